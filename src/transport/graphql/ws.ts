import { execute, getOperationAST, subscribe, type GraphQLError, type GraphQLSchema } from 'graphql';
import { makeServer } from 'graphql-ws';
import type { Principal } from '../../auth/keys.js';
import type { Logger } from '../../logger.js';
import type { GatewayCore } from '../core.js';
import { credentialsOf } from '../request.js';
import { ConnectionPolicy, policedState, type PolicedConnection, type SocketLimits } from '../socket/policy.js';
import type { TemplatedApp, WebSocket } from '../uws.js';
import { contextFor, documentOrigins } from './context.js';
import { codedError, failureError, outcomeOf } from './errors.js';
import { prepareDocument, type GraphqlLimits } from './prepare.js';
import type { GraphqlContext } from './schema.js';
import { subscribeTopic } from './subscription.js';

export interface GraphqlWsOptions extends GraphqlLimits {
  /** The connection policy's limits, the same as /v1/ws's (frame size and rate, backpressure, keep-alive, expiry notice). */
  socket: SocketLimits;
  /** Running subscriptions per graphql-ws connection (WS_MAX_SUBSCRIPTIONS, as on /v1/ws). */
  maxSubscriptions: number;
  log: Logger;
}

/** Events one subscription may hold while graphql-ws has not taken them: past it the socket is a slow consumer. */
const MAX_QUEUED_EVENTS = 1000;

/** The graphql-ws subprotocol. */
export const GRAPHQL_WS_PROTOCOL = 'graphql-transport-ws';

interface Connection extends PolicedConnection {
  /** The upgrade's `Authorization`/`X-API-Key`, used when `connection_init` carries none. */
  credential: string | undefined;
  onMessage: ((data: string) => Promise<void>) | null;
  onClosed: ((code?: number, reason?: string) => Promise<void>) | null;
}

interface Extra {
  ws: WebSocket<Connection>;
  principal: Principal | null;
  /** When each operation of the connection was received: for its metrics. */
  started: Map<string, number>;
  /** Ids of the connection's running subscriptions: at most `maxSubscriptions`. */
  subscriptions: Set<string>;
  credential: string | undefined;
}

/**
 * GraphQL over the graphql-ws protocol at /graphql: authenticated by `connection_init`'s payload
 * (`{ authorization: "Bearer …" }`, `{ apiKey }` or `{ token }`, as /v1/ws takes them), else by the
 * upgrade's `Authorization`/`X-API-Key` headers; at most `maxSubscriptions` running subscriptions; each
 * subscription is a subscriber of the realtime layer's delivery, subscribed through `topics.subscribe`.
 */
export class GraphqlWsAdapter {
  /** Credentials' lifetime, frame limits, backpressure, keep-alive and close codes: the same policy as /v1/ws. */
  readonly policy: ConnectionPolicy<Connection>;

  constructor(app: TemplatedApp, core: GatewayCore, schema: GraphQLSchema, options: GraphqlWsOptions) {
    const policy = (this.policy = new ConnectionPolicy<Connection>('graphql-ws', options.socket, {
      // graphql-ws has no message for it: a ping whose payload says so (the protocol allows any payload).
      expiring: (ws, expiresAt) =>
        deliver(ws, JSON.stringify({ type: 'ping', payload: { event: 'credentials.expiring', expires_at: new Date(expiresAt).toISOString() } })),
    }));
    const deliver = (ws: WebSocket<Connection>, data: string) => {
      if (ws.getUserData().closed) return;
      ws.cork(() => ws.send(data, false));
      policy.sent(ws);
    };
    const observe = (name: string | null | undefined, type: string, outcome: string, startedAt: number) =>
      core.observeGraphql({ operationName: name || 'anonymous', type, outcome, seconds: (performance.now() - startedAt) / 1000 });
    const server = makeServer<Record<string, unknown> | undefined, Extra>({
      schema,
      // This module's graphql, whatever copy graphql-ws would resolve (one realm for the schema).
      execute: (args) => execute(args),
      subscribe: (args) => subscribe(args),
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const authorization = typeof params.authorization === 'string' ? /^Bearer\s+(\S+)$/i.exec(params.authorization)?.[1] : undefined;
        const credential =
          authorization ?? [params.apiKey, params.api_key, params.token].find((value): value is string => typeof value === 'string') ?? ctx.extra.credential;
        try {
          const principal = await core.authenticate(credential);
          ctx.extra.principal = principal;
          policy.authenticated(ctx.extra.ws, principal);
          return true;
        } catch {
          return false; // 4403 Forbidden
        }
      },
      // Each subscribe message is a document: it pays one unit of the key's rate limit, then is prepared as over HTTP.
      onSubscribe: async (ctx, id, payload) => {
        const startedAt = performance.now();
        const refuse = (errors: readonly GraphQLError[], type = 'unknown', name = payload.operationName) => {
          observe(name, type, outcomeOf(errors.map((error) => error.toJSON())), startedAt);
          return errors;
        };
        const principal = ctx.extra.principal!;
        const refused = await core.chargeUnit(principal);
        if (refused) return refuse([failureError(refused)]);
        const preparation = prepareDocument(schema, payload, options);
        if ('refused' in preparation) return refuse(preparation.refused.errors, preparation.refused.label?.type, preparation.refused.label?.name);
        const { document, operation, operationName, variables, label } = preparation.prepared;
        if (operation.operation === 'subscription') {
          if (ctx.extra.subscriptions.size >= options.maxSubscriptions) {
            const max = options.maxSubscriptions;
            const tooMany = codedError(`At most ${max} subscriptions per connection`, 'VALIDATION_ERROR', { status: 400, details: { max_subscriptions: max } });
            return refuse([tooMany], label.type, label.name);
          }
          ctx.extra.subscriptions.add(id);
        }
        ctx.extra.started.set(id, startedAt);
        const nextOrigin = documentOrigins({ principal, requestId: core.newRequestId(), transport: 'graphql' });
        const ws = ctx.extra.ws;
        const connection = ws.getUserData();
        const context: GraphqlContext = {
          ...contextFor(core, nextOrigin),
          subscribe: (input) =>
            subscribeTopic(core, nextOrigin(), input, {
              maxQueued: MAX_QUEUED_EVENTS,
              isOpen: () => !connection.closed,
              overflow: () => policy.close(ws, 'slow_consumer', 'too slow: resubscribe with since and epoch'),
            }),
        };
        return { schema, document, variableValues: variables, operationName, contextValue: context };
      },
      // A query or mutation: its result; a subscription: whether it started (an error result if not).
      onComplete: (ctx, id) => {
        ctx.extra.subscriptions.delete(id);
      },
      onOperation: async (ctx, id, payload, args, operationResult) => {
        const result = await operationResult;
        const startedAt = ctx.extra.started.get(id) ?? performance.now();
        ctx.extra.started.delete(id);
        const operation = getOperationAST(args.document, args.operationName);
        const errors = Symbol.asyncIterator in result ? undefined : result.errors?.map((error) => error.toJSON());
        observe(payload.operationName ?? operation?.name?.value, operation?.operation ?? 'unknown', outcomeOf(errors), startedAt);
        return result;
      },
    });

    app.ws<Connection>('/graphql', {
      ...policy.behavior(),
      upgrade: (res, req, context) => {
        const offered = (req.getHeader('sec-websocket-protocol') || '').split(',').map((name) => name.trim());
        const key = req.getHeader('sec-websocket-key');
        const extensions = req.getHeader('sec-websocket-extensions');
        if (!offered.includes(GRAPHQL_WS_PROTOCOL)) {
          res.cork(() => {
            res.writeStatus('400 Bad Request');
            res.writeHeader('content-type', 'application/json; charset=utf-8');
            res.end(JSON.stringify({ errors: [{ message: `Offer the ${GRAPHQL_WS_PROTOCOL} subprotocol`, extensions: { code: 'BAD_REQUEST' } }] }));
          });
          return;
        }
        const connection: Connection = {
          ...policedState(core.newConnectionId(), null, options.socket),
          credential: credentialsOf(req),
          onMessage: null,
          onClosed: null,
        };
        res.upgrade(connection, key, GRAPHQL_WS_PROTOCOL, extensions, context);
      },
      open: (ws) => {
        policy.opened(ws);
        const connection = ws.getUserData();
        connection.onClosed = server.opened(
          {
            protocol: GRAPHQL_WS_PROTOCOL,
            send: (data) => deliver(ws, data),
            // The protocol's own closes (4400 bad message, 4403 refused, 4408 no init …): the library picks those codes.
            close: (code, reason) => {
              if (connection.closed) return;
              connection.closed = true;
              ws.end(code, reason);
            },
            onMessage: (cb) => {
              connection.onMessage = cb;
            },
          },
          { ws, principal: null, started: new Map(), subscriptions: new Set(), credential: connection.credential },
        );
      },
      message: (ws, message) => {
        if (!policy.admit(ws, message.byteLength)) return;
        const connection = ws.getUserData();
        const text = Buffer.from(message).toString('utf8');
        connection.onMessage?.(text).catch((error: unknown) => {
          options.log.warn({ err: error, connection_id: connection.id }, 'graphql-ws operation failed');
          policy.close(ws, 'internal_error', 'internal error');
        });
      },
      close: (ws, code, message) => {
        policy.closed(ws);
        void ws.getUserData().onClosed?.(code, Buffer.from(message).toString('utf8'));
      },
    });
  }
}
