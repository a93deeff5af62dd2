import { API_VERSION, STATEBASE_PREFIX } from '../../protocol/index.js';
import type { Logger } from '../logger.js';
import type { GatewayCore } from './core.js';
import { sendJson } from './respond.js';
import type { TemplatedApp } from './uws.js';

/**
 * What the gateway says about itself, without credentials: `/metrics` for Prometheus, `/healthz`
 * and `/readyz` for orchestrators, and `/health`, `/health/ready` and `/health/live` as the
 * StateBase and StateSet clients read them. Mounted before the REST routes, whose catch-all
 * answers anything not registered first.
 */
export interface HealthOptions {
  log: Logger;
}

export function mountHealth(app: TemplatedApp, core: GatewayCore, options: HealthOptions): void {
  app.get('/metrics', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const answer = (status: string, text: string) => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(status);
        res.writeHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
        res.end(text);
      });
    };
    // A failed scrape rather than a partial one: Prometheus reads a counter that drops as a reset.
    void core.metrics().then(
      (text) => answer('200 OK', text),
      (error: unknown) => {
        options.log.warn({ err: error }, 'metrics could not be gathered');
        answer('503 Service Unavailable', `# metrics unavailable: ${error instanceof Error ? error.message : String(error)}\n`);
      },
    );
  });
  // With several workers, health answers say which one answered (the kernel spreads connections).
  const worker = core.worker ? { worker: core.worker } : {};
  const healthy = JSON.stringify({ status: 'ok', ...worker });
  app.get('/healthz', (res) => sendJson(res, 200, healthy, core.newRequestId()));
  mountClientHealth(app, core);
  app.get('/readyz', (res) => {
    res.onAborted(() => {});
    void core.readiness().then(
      (state) =>
        sendJson(
          res,
          state.ready ? 200 : 503,
          JSON.stringify({ status: state.ready ? 'ready' : 'not_ready', checks: state.checks, ...worker }),
          core.newRequestId(),
        ),
      () => sendJson(res, 503, JSON.stringify({ status: 'not_ready', ...worker }), core.newRequestId()),
    );
  });
}

/**
 * Health as the StateBase client's `/health`, `/health/ready` and `/health/live` read it, at the
 * root, under the StateBase prefix, and under `/v1` (the StateSet client's `healthCheck` asks
 * `{baseURL}/health` with a `…/v1` base). No credentials, like `/healthz` and `/readyz`.
 */
function mountClientHealth(app: TemplatedApp, core: GatewayCore): void {
  const startedAt = Date.now();
  for (const prefix of ['', STATEBASE_PREFIX, '/v1']) {
    app.get(`${prefix}/health`, (res) => {
      res.onAborted(() => {});
      const answer = (ready: boolean, checks: Record<string, string>) =>
        sendJson(
          res,
          ready ? 200 : 503,
          JSON.stringify({
            status: ready ? 'healthy' : 'unhealthy',
            timestamp: new Date().toISOString(),
            version: API_VERSION,
            uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
            services: Object.fromEntries(Object.entries(checks).map(([name, state]) => [name, { status: state }])),
          }),
          core.newRequestId(),
        );
      void core.readiness().then(
        (state) => answer(state.ready, state.checks),
        () => answer(false, {}),
      );
    });
    app.get(`${prefix}/health/ready`, (res) => {
      res.onAborted(() => {});
      void core.readiness().then(
        (state) =>
          sendJson(res, state.ready ? 200 : 503, JSON.stringify({ status: state.ready ? 'ready' : 'not_ready', checks: state.checks }), core.newRequestId()),
        () => sendJson(res, 503, JSON.stringify({ status: 'not_ready' }), core.newRequestId()),
      );
    });
    app.get(`${prefix}/health/live`, (res) => sendJson(res, 200, JSON.stringify({ status: 'alive' }), core.newRequestId()));
  }
}
