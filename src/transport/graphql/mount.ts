import type { GatewayCore } from '../core.js';
import type { InFlight } from '../in-flight.js';
import type { TemplatedApp } from '../uws.js';
import { mountGraphqlHttp, type GraphqlHttpOptions } from './http.js';
import { buildSchema } from './schema.js';
import { GraphqlWsAdapter, type GraphqlWsOptions } from './ws.js';

export type { GraphqlLimits } from './prepare.js';
export type GraphqlOptions = GraphqlHttpOptions & GraphqlWsOptions;

/**
 * GraphQL at /graphql over one schema: POST and GET (http.ts) and graphql-ws (ws.ts), which know
 * nothing of each other. Returns the graphql-ws adapter, for closing its connections.
 */
export function mountGraphql(app: TemplatedApp, core: GatewayCore, options: GraphqlOptions, inFlight: InFlight): GraphqlWsAdapter {
  const schema = buildSchema();
  // Both on the same path: uWS hands upgrades to the WebSocket route and plain GETs to the HTTP one.
  const ws = new GraphqlWsAdapter(app, core, schema, options);
  mountGraphqlHttp(app, core, schema, options, inFlight);
  return ws;
}
