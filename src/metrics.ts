import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
