import { createHash } from 'node:crypto';
import { MAX_INPUT_DEPTH, openApiDocument } from '../../protocol/index.js';
import { ApiFailure, toFailure } from '../kernel/errors.js';
import type { Logger } from '../logger.js';
import type { GatewayCore, Outcome, RouteSpec } from './core.js';
import type { InFlight } from './in-flight.js';
import { parseQuery } from './query-string.js';
import { credentialsOf, jsonNestedDeeperThan, JSON_ENVELOPE_LEVELS, readBody } from './request.js';
import { millisText, sendFailure, sendJson, sendPlain, sendPlainFailure, successText } from './respond.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

/**
 * The REST adapter: one uWS route per operation. It reads credentials, path, query and body,
 * hands one input object to the gateway core, and wraps the answer in the StateSet envelope.
 */
export interface HttpOptions {
  maxBodyBytes: number;
  log: Logger;
}

const METHOD_REGISTRARS = {
  GET: 'get',
  POST: 'post',
  PATCH: 'patch',
  PUT: 'put',
  DELETE: 'del',
} as const;

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export function mountHttp(app: TemplatedApp, core: GatewayCore, options: HttpOptions, inFlight: InFlight): void {
  // The REST API's OpenAPI document, generated from the same operation table (no credentials needed).
  const openApi = JSON.stringify(openApiDocument());
  app.get('/v1/openapi.json', (res) => sendJson(res, 200, openApi, core.newRequestId()));
  for (const route of core.routes) {
    const params = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!);
    const pattern = route.path.replace(/\{(\w+)\}/g, ':$1');
    app[METHOD_REGISTRARS[route.method]](pattern, (res, req) => handle(res, req, route, params, core, options, inFlight));
  }

  // Known path, other method: 405; anything else: 404. Both in the envelope.
  const known = core.routes.map((route) => ({ route, regex: new RegExp(`^${route.path.replace(/\{(\w+)\}/g, '[^/]+')}/?$`) }));
  app.any('/*', (res, req) => {
    const url = req.getUrl();
    const requestId = core.newRequestId();
    const allowed = known.filter((entry) => entry.regex.test(url)).map((entry) => entry.route.method);
    if (allowed.length > 0) {
      sendFailure(res, new ApiFailure('METHOD_NOT_ALLOWED', `${req.getMethod().toUpperCase()} is not allowed on ${url}`, { allowed }), requestId);
    } else {
      sendFailure(res, new ApiFailure('RESOURCE_NOT_FOUND', `No route for ${req.getMethod().toUpperCase()} ${url}`, { path: url }, 'route'), requestId);
    }
  });
}

function handle(
  res: HttpResponse,
  req: HttpRequest,
  route: RouteSpec,
  paramNames: string[],
  core: GatewayCore,
  options: HttpOptions,
  inFlight: InFlight,
): void {
  const startedAt = performance.now();
  // Everything from req must be read now: it is gone once this function returns.
  const clientRequestId = req.getHeader('x-request-id');
  const requestId = REQUEST_ID_PATTERN.test(clientRequestId) ? clientRequestId : core.newRequestId();
  const apiKey = credentialsOf(req);
  const contentType = req.getHeader('content-type');
  const contentLength = req.getHeader('content-length');
  const idempotencyKey = req.getHeader('idempotency-key') || undefined;
  const apiVersion = req.getHeader('x-api-version') || undefined;
  const url = req.getUrl();
  const query = req.getQuery() ?? '';
  const pathValues: Record<string, string> = {};
  paramNames.forEach((name, index) => {
    pathValues[name] = safeDecode(req.getParameter(index));
  });

  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  inFlight.start();
  const finish = (answer: { failure: ApiFailure } | { outcome: Outcome }) => {
    inFlight.end();
    if (aborted) return;
    if ('failure' in answer) {
      if (route.present) sendPlainFailure(res, answer.failure.toBody(), answer.failure.status, requestId);
      else sendFailure(res, answer.failure, requestId);
      return;
    }
    const { outcome } = answer;
    const headers = outcomeHeaders(outcome);
    headers.push(['x-statebase-latency', millisText(performance.now() - startedAt)]);
    if (route.present) {
      sendPlain(res, route.status, outcome, route.present, requestId, headers);
      return;
    }
    if (outcome.body !== null) sendJson(res, outcome.status, outcome.body, requestId, headers);
    else if (outcome.failure) sendFailure(res, outcome.failure, requestId, headers);
    else sendJson(res, outcome.status, successText(outcome.data, requestId, startedAt, outcome.version), requestId, headers);
  };

  const run = async (body: Buffer | null): Promise<void> => {
    try {
      const principal = await core.authenticate(apiKey);
      const input = { ...(body === null ? parseQuery(query) : parseJsonBody(body, contentType)), ...pathValues };
      // "The same request" for Idempotency-Key: the same route and path values, and a byte-identical body.
      // Only hashed when an Idempotency-Key asks for it: not on every write.
      const requestText = body === null || idempotencyKey === undefined ? undefined : createHash('sha256').update(url).update('\n').update(body).digest('hex');
      const outcome = await core.execute(route.name, input, { principal, requestId, transport: 'rest', startedAt, apiVersion, idempotencyKey, requestText });
      finish({ outcome });
    } catch (error) {
      const failure = toFailure(error);
      if (failure.code === 'INTERNAL_ERROR') options.log.error({ err: error, request_id: requestId, operation: route.name }, 'request failed');
      finish({ failure });
    }
  };

  if (route.method === 'GET' || route.method === 'DELETE') {
    void run(null);
    return;
  }
  if (contentLength && Number(contentLength) > options.maxBodyBytes) {
    finish({ failure: tooLarge(options.maxBodyBytes) });
    return;
  }
  readBody(res, options.maxBodyBytes, (body) => {
    if (body === null) finish({ failure: tooLarge(options.maxBodyBytes) });
    else void run(body);
  });
}

/** Rate-limit state on every answer to an authenticated request; Retry-After when refused; replay marker. */
function outcomeHeaders(outcome: Outcome): [string, string][] {
  const headers: [string, string][] = [];
  const limit = outcome.rateLimit;
  if (limit) {
    headers.push(['x-ratelimit-limit', String(limit.limit)], ['x-ratelimit-remaining', String(limit.remaining)], ['x-ratelimit-reset', String(limit.resetAt)]);
    if (!limit.allowed) headers.push(['retry-after', String(limit.retryAfter)]);
  }
  if (outcome.replayed) headers.push(['idempotent-replayed', 'true']);
  return headers;
}

function tooLarge(limit: number): ApiFailure {
  return new ApiFailure('PAYLOAD_TOO_LARGE', `Request body is larger than ${limit} bytes`, { max_bytes: limit });
}

function parseJsonBody(body: Buffer, contentType: string): Record<string, unknown> {
  if (body.length === 0) return {};
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType)) {
    throw new ApiFailure('UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json', { content_type: contentType || null });
  }
  const text = body.toString('utf8');
  if (jsonNestedDeeperThan(text, MAX_INPUT_DEPTH + JSON_ENVELOPE_LEVELS)) {
    throw new ApiFailure('VALIDATION_ERROR', `Request body is nested deeper than ${MAX_INPUT_DEPTH} levels`, { max_depth: MAX_INPUT_DEPTH });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiFailure('VALIDATION_ERROR', 'Request body is not valid JSON', {
      reason: error instanceof Error ? error.message : 'unparseable',
    });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiFailure('VALIDATION_ERROR', 'Request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/** A malformed escape in a path is kept as sent: it will simply match no resource. */
function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
