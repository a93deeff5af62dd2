import { createHash } from 'node:crypto';
import { execute, type GraphQLError, type GraphQLSchema } from 'graphql';
import type { Principal } from '../../auth/keys.js';
import { MAX_INPUT_DEPTH } from '../../../protocol/index.js';
import { toFailure, type ApiFailure } from '../../kernel/errors.js';
import type { Logger } from '../../logger.js';
import type { CallOrigin, GatewayCore } from '../core.js';
import type { InFlight } from '../in-flight.js';
import { credentialsOf, jsonNestedDeeperThan, JSON_ENVELOPE_LEVELS, readBody } from '../request.js';
import { statusLine } from '../respond.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../uws.js';
import { contextFor, documentOrigins } from './context.js';
import { codedError, failureError, outcomeOf } from './errors.js';
import { prepareDocument, type GraphqlLimits, type GraphqlRequest, type OperationLabel } from './prepare.js';

export interface GraphqlHttpOptions extends GraphqlLimits {
  maxBodyBytes: number;
  log: Logger;
}

interface Answer {
  status: number;
  body: { data?: unknown; errors?: unknown[] };
  headers?: [string, string][];
  /** The operation, once the document named it: for metrics. */
  operation?: OperationLabel;
}

const refusal = (status: number, errors: readonly GraphQLError[], operation?: OperationLabel): Answer => ({
  status,
  body: { errors: errors.map((error) => error.toJSON()) },
  ...(operation ? { operation } : {}),
});

interface RequestInfo {
  requestId: string;
  idempotencyKey: string | undefined;
  apiVersion: string | undefined;
  startedAt: number;
}

/** A gateway failure as the whole answer (401, 429 …), with Retry-After when it says when to retry. */
function failureAnswer(failure: ApiFailure): Answer {
  const retryAfter = failure.toBody().retry_after;
  return { ...refusal(failure.status, [failureError(failure)]), ...(retryAfter !== undefined ? { headers: [['retry-after', String(retryAfter)]] } : {}) };
}

/**
 * POST /graphql (queries and mutations) and GET /graphql (queries), on the REST server's port.
 * The caller is authenticated first: without valid credentials nothing the request carries is
 * parsed, not even its JSON. Then the document pays one unit of the caller's rate limit (429 with
 * Retry-After once spent), which its first operation runs on.
 */
export function mountGraphqlHttp(app: TemplatedApp, core: GatewayCore, schema: GraphQLSchema, options: GraphqlHttpOptions, inFlight: InFlight): void {
  const serve = (method: 'GET' | 'POST') => (res: HttpResponse, req: HttpRequest) => {
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
    inFlight.start();
    let operationName: unknown;
    const send = (answer: Answer) => {
      inFlight.end();
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
    const caller = core.authenticate(credential).then(
      (principal) => ({ principal }),
      (error: unknown) => ({ failure: toFailure(error) }),
    );
    // The body is read while the key is checked (uWS hands it over now or never); it waits unparsed.
    const body = method === 'POST' ? new Promise<Buffer | null>((resolve) => readBody(res, options.maxBodyBytes, resolve)) : null;
    Promise.all([caller, body])
      .then(async ([authenticated, received]): Promise<Answer> => {
        if ('failure' in authenticated) return failureAnswer(authenticated.failure);
        // One unit for every document, paid before it is parsed: its first operation runs on it.
        const refused = await core.chargeUnit(authenticated.principal);
        if (refused) return failureAnswer(refused);
        const request = method === 'GET' ? requestOfQuery(query) : requestOfBody(received, contentType, options.maxBodyBytes);
        if ('refused' in request) return request.refused;
        operationName = request.sent.operationName;
        return answer(schema, core, options, authenticated.principal, request.sent, method, { requestId, idempotencyKey, apiVersion, startedAt });
      })
      .then(send, (error: unknown) => {
        options.log.error({ err: error, request_id: requestId }, 'graphql request failed');
        send(refusal(500, [codedError('Internal error', 'INTERNAL_ERROR')]));
      });
  };
  app.post('/graphql', serve('POST'));
  app.get('/graphql', serve('GET'));
}

/** GET /graphql?query=…&variables=…&operationName=…: variables are JSON. Wrapped: what the client sent is never taken for a refusal. */
function requestOfQuery(search: string): { sent: GraphqlRequest } | { refused: Answer } {
  const params = new URLSearchParams(search);
  let variables: unknown;
  const text = params.get('variables');
  if (text && jsonNestedDeeperThan(text, MAX_INPUT_DEPTH + JSON_ENVELOPE_LEVELS)) return { refused: tooDeep() };
  try {
    variables = text ? JSON.parse(text) : undefined;
  } catch {
    return { refused: refusal(400, [codedError('variables is not valid JSON', 'BAD_USER_INPUT')]) };
  }
  return { sent: { query: params.get('query') ?? undefined, variables, operationName: params.get('operationName') ?? undefined } };
}

/** Variables nested far deeper than any input may be: refused before JSON.parse builds them. */
function tooDeep(): Answer {
  return refusal(400, [
    codedError(`variables are nested deeper than ${MAX_INPUT_DEPTH} levels`, 'VALIDATION_ERROR', { details: { max_depth: MAX_INPUT_DEPTH } }),
  ]);
}

/** POST /graphql's body: a JSON object, at most `maxBodyBytes`. */
function requestOfBody(body: Buffer | null, contentType: string, maxBodyBytes: number): { sent: GraphqlRequest } | { refused: Answer } {
  if (body === null) return { refused: refusal(413, [codedError(`Request body is larger than ${maxBodyBytes} bytes`, 'PAYLOAD_TOO_LARGE')]) };
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType))
    return { refused: refusal(415, [codedError('Content-Type must be application/json', 'UNSUPPORTED_MEDIA_TYPE')]) };
  const text = body.toString('utf8');
  if (jsonNestedDeeperThan(text, MAX_INPUT_DEPTH + JSON_ENVELOPE_LEVELS)) return { refused: tooDeep() };
  let request: unknown;
  try {
    request = JSON.parse(text);
  } catch {
    return { refused: refusal(400, [codedError('Request body is not valid JSON', 'BAD_REQUEST')]) };
  }
  if (!request || typeof request !== 'object' || Array.isArray(request))
    return { refused: refusal(400, [codedError('Request body must be a JSON object', 'BAD_REQUEST')]) };
  return { sent: request as GraphqlRequest };
}

async function answer(
  schema: GraphQLSchema,
  core: GatewayCore,
  limits: GraphqlLimits,
  principal: Principal,
  request: GraphqlRequest,
  method: 'GET' | 'POST',
  info: RequestInfo,
): Promise<Answer> {
  const preparation = prepareDocument(schema, request, limits);
  if ('refused' in preparation) return refusal(preparation.refused.status, preparation.refused.errors, preparation.refused.label);
  const { query, document, operation, operationName, variables, label } = preparation.prepared;
  const tagged = (answer: Answer): Answer => ({ ...answer, operation: label });
  if (method === 'GET' && operation.operation !== 'query') {
    return tagged({
      ...refusal(405, [codedError('Only queries may be sent with GET; send mutations with POST', 'METHOD_NOT_ALLOWED')]),
      headers: [['allow', 'POST']],
    });
  }
  const rootFields = operation.selectionSet.selections.length;
  if (info.idempotencyKey !== undefined && operation.operation === 'mutation' && rootFields > 1) {
    return tagged(refusal(400, [codedError('An Idempotency-Key applies to one mutation: send one mutation field per request', 'VALIDATION_ERROR')]));
  }
  const origin: CallOrigin = { principal, requestId: info.requestId, transport: 'graphql', startedAt: info.startedAt, apiVersion: info.apiVersion };
  const requestText = createHash('sha256')
    .update(query)
    .update('\n')
    .update(JSON.stringify(variables))
    .update('\n')
    .update(operationName ?? '')
    .digest('hex');
  const idempotency = operation.operation === 'mutation' && info.idempotencyKey !== undefined ? { key: info.idempotencyKey, requestText } : undefined;
  const result = await execute({
    schema,
    document,
    variableValues: variables,
    operationName,
    contextValue: contextFor(core, documentOrigins(origin), idempotency),
  });
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
