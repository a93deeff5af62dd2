// The clients of the wire contract: `GatewaySocket`, `RestClient` and `ApiError` (client.ts), and
// `ResilientClient` with what applications see of it (resilient-client.ts, resilient-contract.ts).
// The typed SDK is `sdk/index.ts`. clients/ imports only clients/ and protocol/, never src/.
export * from './client.js';
export * from './resilient-client.js';
