import type { Logger } from '../logger.js';
import type { GatewayCore } from './core.js';
import { mountGraphql, type GraphqlLimits } from './graphql/mount.js';
import type { GraphqlWsAdapter } from './graphql/ws.js';
import { mountHealth } from './health.js';
import { mountHttp } from './http.js';
import { InFlight } from './in-flight.js';
import { mountStatic, type DemoWidgetService } from './static.js';
import type { SocketLimits } from './socket/policy.js';
import { uWS, uws, type us_listen_socket } from './uws.js';
import { WsAdapter } from './ws.js';

export interface ServerOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  ws: SocketLimits & { maxSubscriptions: number };
  graphql: GraphqlLimits;
  drain: { batchSize: number; intervalMs: number };
  /** POST /v1/demo/widget; null: off (404). */
  demoWidget: DemoWidgetService | null;
  log: Logger;
  /**
   * Share the port with the other workers of this gateway (SO_REUSEPORT: the kernel spreads new
   * connections between them). Unset: exclusive, so that a second gateway cannot join unnoticed.
   */
  sharedPort?: boolean;
}

/** uWS's LIBUS_LISTEN_EXCLUSIVE_PORT; without it (0), uWS binds with SO_REUSEPORT. */
const LISTEN_EXCLUSIVE_PORT = 1;
const LISTEN_SHARED_PORT = 0;

/**
 * One uWS app serving every transport on the same port: it assembles the adapters (the
 * WebSocket, GraphQL, the widget's static files, REST), which know nothing of each other, with
 * what they share (health routes, the in-flight count).
 */
export class Server {
  private listenSocket: us_listen_socket | null = null;
  /** Requests and calls in flight on every transport: a drain waits for them (bounded). */
  private readonly inFlight = new InFlight();
  private readonly ws: WsAdapter;
  private readonly graphqlWs: GraphqlWsAdapter;
  port = 0;

  constructor(
    core: GatewayCore,
    private readonly options: ServerOptions,
  ) {
    const app = uWS.App();
    this.ws = new WsAdapter(app, core, { ...options.ws, log: options.log }, this.inFlight);
    this.ws.mount('/v1/ws');
    // Everything before the REST routes: their catch-all answers 404 for anything not registered first.
    this.graphqlWs = mountGraphql(
      app,
      core,
      { ...options.graphql, maxBodyBytes: options.maxBodyBytes, socket: options.ws, maxSubscriptions: options.ws.maxSubscriptions, log: options.log },
      this.inFlight,
    );
    mountStatic(app, { demo: options.demoWidget, newRequestId: () => core.newRequestId(), log: options.log });
    mountHealth(app, core, { log: options.log });
    mountHttp(app, core, { maxBodyBytes: options.maxBodyBytes, log: options.log }, this.inFlight);
    this.app = app;
  }

  private readonly app: ReturnType<typeof uWS.App>;

  static get native(): boolean {
    return uws.native;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      // Exclusive: uWS otherwise binds with SO_REUSEPORT, and a second gateway on the same port
      // would start without a word and share the traffic with the first. Workers of one gateway
      // share it on purpose (their supervisor has checked that nobody else holds the port).
      // (The typings lack the host + options overload that the native binary has.)
      const listen = this.app.listen.bind(this.app) as unknown as (
        host: string,
        port: number,
        options: number,
        cb: (socket: us_listen_socket | false) => void,
      ) => void;
      const shared = this.options.sharedPort === true;
      listen(this.options.host, this.options.port, shared ? LISTEN_SHARED_PORT : LISTEN_EXCLUSIVE_PORT, (socket) => {
        if (!socket) {
          const holder = shared ? 'by a process that does not share it' : '(is another gateway running?)';
          reject(new Error(`could not listen on ${this.options.host}:${this.options.port}: the port is in use ${holder} or not allowed`));
          return;
        }
        this.listenSocket = socket;
        this.port = uWS.us_socket_local_port(socket as never);
        resolve(this.port);
      });
    });
  }

  /** Closes the connections of every socket transport opened with a key that has been revoked. */
  disconnectKey(keyId: string): void {
    for (const policy of this.policies) policy.revoke((principal) => principal.keyId === keyId);
  }

  /** The connection policy of every socket transport: what revocation, draining and counting reach. */
  private get policies() {
    return [this.ws.policy, this.graphqlWs.policy] as const;
  }

  /** Open sockets of every socket transport. */
  get connections(): number {
    return this.policies.reduce((sum, policy) => sum + policy.sockets.size, 0);
  }

  /** Stops accepting, waits for in-flight requests (bounded), then closes every socket as going away (1001), in staggered batches. */
  async close(graceMs: number): Promise<void> {
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
    await Promise.race([this.inFlight.idle(), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    await Promise.all(this.policies.map((policy) => policy.closeAll(this.options.drain)));
    for (const policy of this.policies) policy.stop();
  }
}
