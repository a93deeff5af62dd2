import { execute, getOperationAST, subscribe, type GraphQLError, type GraphQLSchema } from 'graphql';
import { makeServer } from 'graphql-ws';
import type { Principal } from '../../auth/keys.js';
import type { Logger } from '../../logger.js';
import type { GatewayCore } from '../core.js';
import { credentialsOf } from '../http.js';
import { uWS, type TemplatedApp, type WebSocket } from '../uws.js';
import { contextFor, documentOrigins } from './context.js';
import { codedError, failureError, outcomeOf } from './errors.js';
import { prepareDocument, type GraphqlLimits } from './prepare.js';
import type { GraphqlContext } from './schema.js';
import { subscribeTopic } from './subscription.js';

export interface GraphqlWsOptions extends GraphqlLimits {
  maxBodyBytes: number;
  /** Running subscriptions per graphql-ws connection (WS_MAX_SUBSCRIPTIONS, as on /v1/ws). */
  maxSubscriptions: number;
  log: Logger;
}

/** The graphql-ws subprotocol. */
export const GRAPHQL_WS_PROTOCOL = 'graphql-transport-ws';

interface Connection {
  id: string;
  /** The upgrade's `Authorization`/`X-API-Key`, used when `connection_init` carries none. */
  credential: string | undefined;
  closed: boolean;
  onMessage: ((data: string) => Promise<void>) | null;
  onClosed: ((code?: number, reason?: string) => Promise<void>) | null;
}

interface Extra {
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
  readonly sockets = new Set<WebSocket<Connection>>();

  constructor(app: TemplatedApp, core: GatewayCore, schema: GraphQLSchema, options: GraphqlWsOptions) {
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
          ctx.extra.principal = await core.authenticate(credential);
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
        const context: GraphqlContext = { ...contextFor(core, nextOrigin), subscribe: (input) => subscribeTopic(core, nextOrigin(), input) };
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
      compression: uWS.DISABLED,
      maxPayloadLength: options.maxBodyBytes,
      idleTimeout: 120,
      sendPingsAutomatically: true,
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
        const connection: Connection = { id: core.newConnectionId(), credential: credentialsOf(req), closed: false, onMessage: null, onClosed: null };
        res.upgrade(connection, key, GRAPHQL_WS_PROTOCOL, extensions, context);
      },
      open: (ws) => {
        this.sockets.add(ws);
        const connection = ws.getUserData();
        connection.onClosed = server.opened(
          {
            protocol: GRAPHQL_WS_PROTOCOL,
            send: (data) => {
              if (!connection.closed) ws.send(data, false);
            },
            close: (code, reason) => {
              if (!connection.closed) ws.end(code, reason);
            },
            onMessage: (cb) => {
              connection.onMessage = cb;
            },
          },
          { principal: null, started: new Map(), subscriptions: new Set(), credential: connection.credential },
        );
      },
      message: (ws, message) => {
        const connection = ws.getUserData();
        const text = Buffer.from(message).toString('utf8');
        connection.onMessage?.(text).catch((error: unknown) => {
          options.log.warn({ err: error, connection_id: connection.id }, 'graphql-ws operation failed');
          if (!connection.closed) ws.end(4500, 'Internal error');
        });
      },
      close: (ws, code, message) => {
        this.sockets.delete(ws);
        const connection = ws.getUserData();
        connection.closed = true;
        void connection.onClosed?.(code, Buffer.from(message).toString('utf8'));
      },
    });
  }

  /** Closes every connection (1001 going away). */
  closeAll(): void {
    for (const ws of [...this.sockets]) ws.end(1001, 'server shutting down');
  }
}
