import { createHash } from 'node:crypto';
import DataLoader from 'dataloader';
import {
  execute,
  getNamedType,
  getOperationAST,
  GraphQLError,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLOutputType,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { MAX_BATCH_KEYS } from '../../../protocol/index.js';
import { toFailure } from '../../kernel/errors.js';
import type { Logger } from '../../logger.js';
import type { CallOrigin, GatewayCore } from '../core.js';
import { buildSchema, type ConnectionSlice, type GraphqlContext } from './schema.js';
import { GraphqlWsAdapter } from './ws.js';
import { credentialsOf, readBody, type HttpTracker } from '../http.js';
import { statusLine } from '../respond.js';
import type { HttpResponse, TemplatedApp } from '../uws.js';

/** Protection against one query taking the server down (configuration, GRAPHQL_*). */
export interface GraphqlLimits {
  introspection: boolean;
  maxDepth: number;
  maxCost: number;
  maxAliases: number;
}

export interface GraphqlOptions extends GraphqlLimits {
  maxBodyBytes: number;
  /** Running subscriptions per graphql-ws connection (WS_MAX_SUBSCRIPTIONS, as on /v1/ws). */
  maxSubscriptions: number;
  log: Logger;
}

/** Cost of a list field whose size no argument says (a page's `data`, a default `messages`). */
const DEFAULT_LIST_SIZE = 20;

interface GraphqlRequest {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
}

interface Answer {
  status: number;
  body: { data?: unknown; errors?: unknown[] };
  headers?: [string, string][];
  /** The operation, once the document named it: for metrics. */
  operation?: { name: string; type: string };
}

/** `ok`, or the first error's code: what the operation metrics count. */
export function outcomeOf(errors: readonly unknown[] | undefined): string {
  const first = errors?.[0] as { extensions?: { code?: unknown } } | undefined;
  if (!first) return 'ok';
  return typeof first.extensions?.code === 'string' ? first.extensions.code : 'INTERNAL_ERROR';
}

const failureAnswer = (status: number, message: string, code: string, extra: Record<string, unknown> = {}): Answer => ({
  status,
  body: { errors: [{ message, extensions: { code, ...extra } }] },
});

/** POST /graphql (queries and mutations) and GET /graphql (queries), on the REST server's port. */
export function mountGraphql(app: TemplatedApp, core: GatewayCore, options: GraphqlOptions, tracker: HttpTracker): GraphqlWsAdapter {
  const schema = buildSchema();
  // Subscriptions (and queries, mutations) over graphql-ws, on the same path: uWS hands upgrades
  // to the WebSocket route and plain GETs to the route below.
  const ws = new GraphqlWsAdapter(app, core, schema, options);
  const serve = (method: 'GET' | 'POST') => (res: HttpResponse, req: import('../uws.js').HttpRequest) => {
    const startedAt = performance.now();
    const requestId = core.newRequestId();
    const credential = credentialsOf(req);
    const idempotencyKey = req.getHeader('idempotency-key') || undefined;
    const apiVersion = req.getHeader('x-api-version') || undefined;
    const contentType = req.getHeader('content-type');
    const query = req.getQuery() ?? '';
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    tracker.start();
    let operationName: unknown;
    const send = (answer: Answer) => {
      tracker.end();
      core.observeGraphql({
        operationName: answer.operation?.name ?? (typeof operationName === 'string' && operationName ? operationName : 'anonymous'),
        type: answer.operation?.type ?? 'unknown',
        outcome: outcomeOf(answer.body.errors),
        seconds: (performance.now() - startedAt) / 1000,
      });
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(statusLine(answer.status));
        res.writeHeader('content-type', 'application/json; charset=utf-8');
        res.writeHeader('x-request-id', requestId);
        for (const [name, value] of answer.headers ?? []) res.writeHeader(name, value);
        res.end(JSON.stringify(answer.body));
      });
    };
    const run = (request: GraphqlRequest) => {
      operationName = request.operationName;
      return answer(schema, core, options, request, method, { credential, requestId, idempotencyKey, apiVersion, startedAt }).then(send, (error: unknown) => {
        options.log.error({ err: error, request_id: requestId }, 'graphql request failed');
        send(failureAnswer(500, 'Internal error', 'INTERNAL_ERROR'));
      });
    };
    if (method === 'GET') {
      const params = new URLSearchParams(query);
      let variables: unknown;
      try {
        variables = params.get('variables') ? JSON.parse(params.get('variables')!) : undefined;
      } catch {
        send(failureAnswer(400, 'variables is not valid JSON', 'BAD_USER_INPUT'));
        return;
      }
      void run({ query: params.get('query') ?? undefined, variables, operationName: params.get('operationName') ?? undefined });
      return;
    }
    readBody(res, options.maxBodyBytes, (body) => {
      if (body === null) return send(failureAnswer(413, `Request body is larger than ${options.maxBodyBytes} bytes`, 'PAYLOAD_TOO_LARGE'));
      if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType))
        return send(failureAnswer(415, 'Content-Type must be application/json', 'UNSUPPORTED_MEDIA_TYPE'));
      let request: unknown;
      try {
        request = JSON.parse(body.toString('utf8'));
      } catch {
        return send(failureAnswer(400, 'Request body is not valid JSON', 'BAD_REQUEST'));
      }
      if (!request || typeof request !== 'object' || Array.isArray(request))
        return send(failureAnswer(400, 'Request body must be a JSON object', 'BAD_REQUEST'));
      void run(request as GraphqlRequest);
    });
  };
  app.post('/graphql', serve('POST'));
  app.get('/graphql', serve('GET'));
  return ws;
}

interface RequestInfo {
  credential: string | undefined;
  requestId: string;
  idempotencyKey: string | undefined;
  apiVersion: string | undefined;
  startedAt: number;
}

async function answer(
  schema: GraphQLSchema,
  core: GatewayCore,
  limits: GraphqlLimits,
  request: GraphqlRequest,
  method: 'GET' | 'POST',
  info: RequestInfo,
): Promise<Answer> {
  if (typeof request.query !== 'string' || request.query.trim() === '') return failureAnswer(400, 'query must be a non-empty string', 'BAD_REQUEST');
  if (request.variables != null && (typeof request.variables !== 'object' || Array.isArray(request.variables))) {
    return failureAnswer(400, 'variables must be an object', 'BAD_USER_INPUT');
  }
  if (request.operationName != null && typeof request.operationName !== 'string') return failureAnswer(400, 'operationName must be a string', 'BAD_REQUEST');
  const variables = (request.variables ?? {}) as Record<string, unknown>;
  const operationName = (request.operationName as string | null | undefined) ?? undefined;

  let document: DocumentNode;
  try {
    document = parse(request.query, { maxTokens: 10_000 });
  } catch (error) {
    return { status: 400, body: { errors: [coded(error as GraphQLError, 'GRAPHQL_PARSE_FAILED')] } };
  }
  const invalid = validateDocument(schema, document, limits);
  if (invalid.length > 0) return { status: 400, body: { errors: invalid.map((error) => error.toJSON()) } };
  const operation = getOperationAST(document, operationName);
  if (!operation)
    return failureAnswer(400, operationName ? `Unknown operation ${operationName}` : 'Name the operation to run (operationName)', 'BAD_USER_INPUT');
  const named = { name: operationName ?? operation.name?.value ?? 'anonymous', type: operation.operation };
  const tagged = (answer: Answer): Answer => ({ ...answer, operation: named });
  if (method === 'GET' && operation.operation !== 'query') {
    return tagged({ ...failureAnswer(405, 'Only queries may be sent with GET; send mutations with POST', 'METHOD_NOT_ALLOWED'), headers: [['allow', 'POST']] });
  }
  const fragments = Object.fromEntries(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  const protection = protect(schema, operation.selectionSet, operation.operation, fragments, variables, limits);
  if (protection) return tagged({ status: 400, body: { errors: [protection.toJSON()] } });
  const rootFields = operation.selectionSet.selections.length;
  if (info.idempotencyKey !== undefined && operation.operation === 'mutation' && rootFields > 1) {
    return tagged(failureAnswer(400, 'An Idempotency-Key applies to one mutation: send one mutation field per request', 'VALIDATION_ERROR'));
  }

  let principal;
  try {
    principal = await core.authenticate(info.credential);
  } catch (error) {
    const failure = toFailure(error);
    return tagged(failureAnswer(failure.status, failure.message, failure.code, { type: failure.toBody().type }));
  }
  const origin: CallOrigin = { principal, requestId: info.requestId, transport: 'graphql', startedAt: info.startedAt, apiVersion: info.apiVersion };
  const requestText = createHash('sha256')
    .update(request.query)
    .update('\n')
    .update(JSON.stringify(variables))
    .update('\n')
    .update(operationName ?? '')
    .digest('hex');
  const context = contextFor(core, origin, operation.operation === 'mutation' ? info.idempotencyKey : undefined, requestText);
  const result = await execute({ schema, document, variableValues: variables, operationName, contextValue: context });
  const errors = result.errors?.map((error) => {
    const json = error.toJSON();
    // Variables of the wrong type fail before any resolver runs.
    if (!json.extensions?.code) return { ...json, extensions: { ...json.extensions, code: result.data === undefined ? 'BAD_USER_INPUT' : 'INTERNAL_ERROR' } };
    return json;
  });
  return tagged({
    status: result.data === undefined ? 400 : 200,
    body: { ...(errors ? { errors } : {}), ...(result.data !== undefined ? { data: result.data } : {}) },
  });
}

export function contextFor(core: GatewayCore, origin: CallOrigin, idempotencyKey: string | undefined, requestText: string): GraphqlContext {
  const call = async (operation: string, input: Record<string, unknown>, path: string) => {
    const outcome = await core.execute(operation, input, {
      ...origin,
      startedAt: performance.now(),
      ...(idempotencyKey !== undefined ? { idempotencyKey, requestText: `${requestText}\n${path}` } : {}),
    });
    if (outcome.failure) {
      const body = outcome.failure.toBody();
      throw new GraphQLError(body.message, {
        extensions: { code: body.code, type: body.type, status: outcome.failure.status, ...(body.details ? { details: body.details } : {}) },
      });
    }
    return outcome.data;
  };
  /** One loader per slice (size, cursors): all parents asking the same slice are one statement. */
  const loaders = <T extends Record<string, unknown>>(operation: string, keysField: string, parentField: string) => {
    const bySlice = new Map<string, DataLoader<string, T[]>>();
    return (parent: string, slice: ConnectionSlice | number): Promise<T[]> => {
      const args: ConnectionSlice = typeof slice === 'number' ? { last: slice } : slice;
      const key = JSON.stringify([args.first, args.last, args.after, args.before]);
      let loader = bySlice.get(key);
      if (!loader) {
        loader = new DataLoader<string, T[]>(
          async (ids) => {
            const { data } = (await call(operation, { [keysField]: [...ids], ...args }, operation)) as { data: T[] };
            const groups = new Map<string, T[]>(ids.map((id) => [id, []]));
            for (const row of data) groups.get(row[parentField] as string)?.push(row);
            return ids.map((id) => groups.get(id)!);
          },
          { maxBatchSize: MAX_BATCH_KEYS },
        );
        bySlice.set(key, loader);
      }
      return loader.load(parent);
    };
  };
  return {
    call,
    conversationsOf: loaders('conversations.last_by_agents', 'agent_ids', 'agent_id'),
    messagesOf: loaders('messages.last_by_conversations', 'conversation_ids', 'conversation_id'),
  };
}

/** Depth, aliases and estimated cost, checked before anything runs; null when within limits. */
export function protect(
  schema: GraphQLSchema,
  root: SelectionSetNode,
  kind: 'query' | 'mutation' | 'subscription',
  fragments: Record<string, FragmentDefinitionNode>,
  variables: Record<string, unknown>,
  limits: GraphqlLimits,
): GraphQLError | null {
  let aliases = 0;
  let maxDepth = 0;
  const numberOf = (node: ValueNode | undefined): number | undefined => {
    if (!node) return undefined;
    if (node.kind === Kind.INT) return Number(node.value);
    if (node.kind === Kind.VARIABLE) {
      const value = variables[node.name.value];
      return typeof value === 'number' ? value : undefined;
    }
    return undefined;
  };
  // Cost of a selection set under a parent type: each field 1, times the sizes of the lists it sits in.
  // `sized`: the parent object was already multiplied by its size argument (a page's `limit`, a
  // connection's `last`): its unargumented lists (`data`, `edges`) hold those items, not more.
  const walk = (set: SelectionSetNode, parent: GraphQLOutputType | undefined, depth: number, seen: Set<string>, sized = false): number => {
    maxDepth = Math.max(maxDepth, depth);
    let cost = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments[selection.name.value];
        if (!fragment || seen.has(fragment.name.value)) continue;
        cost += walk(
          fragment.selectionSet,
          schema.getType(fragment.typeCondition.name.value) as GraphQLOutputType,
          depth,
          new Set([...seen, fragment.name.value]),
          sized,
        );
        continue;
      }
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? (schema.getType(selection.typeCondition.name.value) as GraphQLOutputType) : parent;
        cost += walk(selection.selectionSet, type, depth, seen, sized);
        continue;
      }
      if (selection.alias) aliases++;
      const named = parent ? getNamedType(parent) : undefined;
      const field = named && isObjectType(named) ? named.getFields()[selection.name.value] : undefined;
      let size = 1;
      let childSized = false;
      if (field) {
        const bare = isNonNullType(field.type) ? field.type.ofType : field.type;
        // The size asked for, else the argument's default (a list's `last`, a page's `limit`).
        const sizeArg = ['last', 'first', 'limit']
          .map((name) => numberOf(selection.arguments?.find((arg) => arg.name.value === name)?.value) ?? defaultOf(field.args.find((arg) => arg.name === name)))
          .find((n) => n !== undefined);
        const isConnection = getNamedType(field.type).name.endsWith('Connection');
        if (sizeArg !== undefined && (isConnection || isListType(bare) || selection.selectionSet)) size = sizeArg;
        else if (isConnection) size = 10;
        else if (isListType(bare) && !sized) size = DEFAULT_LIST_SIZE;
        childSized = size > 1 && !isListType(bare);
      }
      cost += size * (1 + (selection.selectionSet ? walk(selection.selectionSet, field?.type, depth + 1, seen, childSized) : 0));
    }
    return cost;
  };
  const rootType = kind === 'mutation' ? schema.getMutationType() : kind === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
  const cost = walk(root, rootType ?? undefined, 1, new Set());
  if (maxDepth > limits.maxDepth) {
    return new GraphQLError(`Query is ${maxDepth} levels deep; at most ${limits.maxDepth} are allowed`, {
      extensions: { code: 'QUERY_TOO_DEEP', depth: maxDepth, max_depth: limits.maxDepth },
    });
  }
  if (aliases > limits.maxAliases) {
    return new GraphQLError(`Query uses ${aliases} aliases; at most ${limits.maxAliases} are allowed`, {
      extensions: { code: 'TOO_MANY_ALIASES', aliases, max_aliases: limits.maxAliases },
    });
  }
  if (cost > limits.maxCost) {
    return new GraphQLError(`Query's estimated cost is ${cost}; at most ${limits.maxCost} is allowed`, {
      extensions: { code: 'QUERY_TOO_COSTLY', cost, max_cost: limits.maxCost },
    });
  }
  return null;
}

/** The standard rules (and no introspection when switched off), each error with a code. */
export function validateDocument(schema: GraphQLSchema, document: DocumentNode, limits: GraphqlLimits): GraphQLError[] {
  const rules = limits.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  return validate(schema, document, rules, { maxErrors: 20 }).map((error) =>
    coded(error, /introspection/i.test(error.message) ? 'INTROSPECTION_DISABLED' : 'GRAPHQL_VALIDATION_FAILED'),
  );
}

export function coded(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes ?? null,
    source: error.source ?? null,
    positions: error.positions ?? null,
    extensions: { ...error.extensions, code },
  });
}

function defaultOf(arg: { default?: { value?: unknown } | undefined } | undefined): number | undefined {
  const value = arg?.default?.value;
  return typeof value === 'number' ? value : undefined;
}
