// The entry of the package export `stategate/protocol` (package.json). That export gave the
// contract and its clients together while both lived in protocol/; now that protocol/ is the
// contract only (the server imports protocol/index.js and must not load a client), this file keeps
// what applications import from `stategate/protocol` unchanged: the contract plus the clients.
export * from '../protocol/index.js';
export * from './index.js';
