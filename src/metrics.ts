import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Most distinct GraphQL operation names labelled (client-chosen: the series stay bounded). */
export const MAX_GRAPHQL_NAMES = 200;

/** A GraphQL operation as counted: `anonymous` when unnamed, `unknown` type when it did not parse. */
export interface GraphqlObservation {
  operationName: string;
  type: string;
  outcome: string;
  seconds: number;
}

/**
 * Prometheus metrics of one gateway process (`GET /metrics`). Counted per request, per batch and
 * per published event, never per delivered copy: fan-out to subscribers stays in uWS.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly operations: Counter<'operation' | 'transport' | 'outcome'>;
  readonly operationSeconds: Histogram<'transport'>;
  readonly writeBatchRows: Histogram;
  readonly eventsPublished: Counter<'ephemeral'>;
  readonly graphqlOperations: Counter<'operation_name' | 'type' | 'outcome'>;
  readonly graphqlSeconds: Histogram<'type'>;
  /** Operation names are the client's: a bounded set of them is labelled, the rest are `_other`. */
  private readonly graphqlNames = new Set<string>();

  constructor(sources: { connections: () => number; followedStreams: () => number }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'stategate_' });
    this.operations = new Counter({
      name: 'stategate_operations_total',
      help: 'Operations run, by name, transport and outcome (ok or an error code)',
      labelNames: ['operation', 'transport', 'outcome'],
      registers: [this.registry],
    });
    this.operationSeconds = new Histogram({
      name: 'stategate_operation_seconds',
      help: 'Time from receiving an operation to having its answer, by transport',
      labelNames: ['transport'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
    this.writeBatchRows = new Histogram({
      name: 'stategate_group_commit_rows',
      help: 'Rows written by one group-commit statement',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [this.registry],
    });
    this.eventsPublished = new Counter({
      name: 'stategate_events_published_total',
      help: 'Events published on the bus (each is delivered to every subscriber of its topic)',
      labelNames: ['ephemeral'],
      registers: [this.registry],
    });
    this.graphqlOperations = new Counter({
      name: 'stategate_graphql_operations_total',
      help: 'GraphQL operations (documents) run, by operation name, type (query, mutation, subscription) and outcome (ok or the first error code)',
      labelNames: ['operation_name', 'type', 'outcome'],
      registers: [this.registry],
    });
    this.graphqlSeconds = new Histogram({
      name: 'stategate_graphql_operation_seconds',
      help: 'Time from receiving a GraphQL operation to having its answer (a subscription: to its start), by type',
      labelNames: ['type'],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5],
      registers: [this.registry],
    });
    new Gauge({
      name: 'stategate_websocket_connections',
      help: 'Open WebSocket connections on this node',
      registers: [this.registry],
      collect() {
        this.set(sources.connections());
      },
    });
    new Gauge({
      name: 'stategate_streams_followed',
      help: 'Topics this node follows on the bus for its subscribers',
      registers: [this.registry],
      collect() {
        this.set(sources.followedStreams());
      },
    });
  }

  /** One GraphQL operation's answer. */
  observeGraphql({ operationName, type, outcome, seconds }: GraphqlObservation): void {
    let name = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(operationName) ? operationName : '_invalid';
    if (!this.graphqlNames.has(name)) {
      if (this.graphqlNames.size >= MAX_GRAPHQL_NAMES) name = '_other';
      else this.graphqlNames.add(name);
    }
    this.graphqlOperations.inc({ operation_name: name, type, outcome });
    this.graphqlSeconds.observe({ type }, seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
