import { createHash } from 'node:crypto';
import { execute, type GraphQLError, type GraphQLSchema } from 'graphql';
import { toFailure } from '../../kernel/errors.js';
import type { Logger } from '../../logger.js';
import type { CallOrigin, GatewayCore } from '../core.js';
import { credentialsOf, readBody, type HttpTracker } from '../http.js';
import { statusLine } from '../respond.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../uws.js';
import { contextFor } from './context.js';
import { codedError, outcomeOf } from './errors.js';
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
  credential: string | undefined;
  requestId: string;
  idempotencyKey: string | undefined;
  apiVersion: string | undefined;
  startedAt: number;
}

/** POST /graphql (queries and mutations) and GET /graphql (queries), on the REST server's port. */
export function mountGraphqlHttp(app: TemplatedApp, core: GatewayCore, schema: GraphQLSchema, options: GraphqlHttpOptions, tracker: HttpTracker): void {
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
        send(refusal(500, [codedError('Internal error', 'INTERNAL_ERROR')]));
      });
    };
    if (method === 'GET') {
      const params = new URLSearchParams(query);
      let variables: unknown;
      try {
        variables = params.get('variables') ? JSON.parse(params.get('variables')!) : undefined;
      } catch {
        send(refusal(400, [codedError('variables is not valid JSON', 'BAD_USER_INPUT')]));
        return;
      }
      void run({ query: params.get('query') ?? undefined, variables, operationName: params.get('operationName') ?? undefined });
      return;
    }
    readBody(res, options.maxBodyBytes, (body) => {
      if (body === null) return send(refusal(413, [codedError(`Request body is larger than ${options.maxBodyBytes} bytes`, 'PAYLOAD_TOO_LARGE')]));
      if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType))
        return send(refusal(415, [codedError('Content-Type must be application/json', 'UNSUPPORTED_MEDIA_TYPE')]));
      let request: unknown;
      try {
        request = JSON.parse(body.toString('utf8'));
      } catch {
        return send(refusal(400, [codedError('Request body is not valid JSON', 'BAD_REQUEST')]));
      }
      if (!request || typeof request !== 'object' || Array.isArray(request))
        return send(refusal(400, [codedError('Request body must be a JSON object', 'BAD_REQUEST')]));
      void run(request as GraphqlRequest);
    });
  };
  app.post('/graphql', serve('POST'));
  app.get('/graphql', serve('GET'));
}

async function answer(
  schema: GraphQLSchema,
  core: GatewayCore,
  limits: GraphqlLimits,
  request: GraphqlRequest,
  method: 'GET' | 'POST',
  info: RequestInfo,
): Promise<Answer> {
  const preparation = prepareDocument(schema, request, limits);
  if ('refused' in preparation) return refusal(preparation.refused.status, preparation.refused.errors, preparation.refused.label);
  const { document, operation, operationName, variables, label } = preparation.prepared;
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

  let principal;
  try {
    principal = await core.authenticate(info.credential);
  } catch (error) {
    const failure = toFailure(error);
    return tagged(refusal(failure.status, [codedError(failure.message, failure.code, { type: failure.toBody().type })]));
  }
  const origin: CallOrigin = { principal, requestId: info.requestId, transport: 'graphql', startedAt: info.startedAt, apiVersion: info.apiVersion };
  const requestText = createHash('sha256')
    .update(preparation.prepared.query)
    .update('\n')
    .update(JSON.stringify(variables))
    .update('\n')
    .update(operationName ?? '')
    .digest('hex');
  const idempotency = operation.operation === 'mutation' && info.idempotencyKey !== undefined ? { key: info.idempotencyKey, requestText } : undefined;
  const result = await execute({ schema, document, variableValues: variables, operationName, contextValue: contextFor(core, origin, idempotency) });
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
