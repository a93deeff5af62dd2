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
  readonly operationSeconds: TallyHistogram;
  /** Operations counted since the last scrape: transport -> operation -> outcome -> count. */
  private readonly operationTally = new Map<string, Map<string, Map<string, number>>>();
  readonly writeBatchRows: Histogram;
  readonly eventsPublished: Counter<'ephemeral'>;
  readonly graphqlOperations: Counter<'operation_name' | 'type' | 'outcome'>;
  readonly graphqlSeconds: Histogram<'type'>;
  /** Operation names are the client's: a bounded set of them is labelled, the rest are `_other`. */
  private readonly graphqlNames = new Set<string>();

  constructor(sources: { connections: () => number; followedStreams: () => number }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'stategate_' });
    const tally = this.operationTally;
    this.operations = new Counter({
      name: 'stategate_operations_total',
      help: 'Operations run, by name, transport and outcome (ok or an error code)',
      labelNames: ['operation', 'transport', 'outcome'],
      registers: [this.registry],
      // Counted in plain numbers per call (observeOperation), folded in here when scraped.
      collect() {
        for (const [transport, byOperation] of tally) {
          for (const [operation, byOutcome] of byOperation) {
            for (const [outcome, count] of byOutcome) {
              if (count === 0) continue;
              this.inc({ operation, transport, outcome }, count);
              byOutcome.set(outcome, 0);
            }
          }
        }
      },
    });
    this.operationSeconds = new TallyHistogram(
      'stategate_operation_seconds',
      'Time from receiving an operation to having its answer, by transport',
      'transport',
      [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    );
    this.registry.registerMetric(this.operationSeconds as unknown as Parameters<Registry['registerMetric']>[0]);
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

  /** One operation's answer, on any transport: plain arithmetic per call, labels only when scraped. */
  observeOperation(operation: string, transport: string, outcome: string, seconds: number): void {
    let byOperation = this.operationTally.get(transport);
    if (!byOperation) this.operationTally.set(transport, (byOperation = new Map()));
    let byOutcome = byOperation.get(operation);
    if (!byOutcome) byOperation.set(operation, (byOutcome = new Map()));
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
    this.operationSeconds.observe(transport, seconds);
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

  /** Every metric as data, for a supervisor that merges the registries of several workers. */
  async snapshot(): Promise<MetricsSnapshot> {
    return (await this.registry.getMetricsAsJSON()) as unknown as MetricsSnapshot;
  }
}

/**
 * A registry's metrics as `getMetricsAsJSON` gives them (prom-client's typings call `type` an enum;
 * it is the string `counter`, `gauge`, `histogram` or `summary`).
 */
export interface MetricJson {
  name: string;
  help: string;
  type: string;
  /** How prom-client's AggregatorRegistry merges this metric across processes (unset: sum). */
  aggregator?: string;
  values: { value: number; labels: Record<string, string | number | undefined>; metricName?: string }[];
}

export type MetricsSnapshot = MetricJson[];

/**
 * A Prometheus histogram with one label, kept as arrays of numbers: observing is a bucket search
 * and three additions, where prom-client's labelled observe hashes and validates its labels on
 * every call. Registered with the prom-client registry, it is scraped like any other metric.
 */
export class TallyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly upperBounds: readonly number[],
  ) {}

  observe(label: string, value: number): void {
    let series = this.series.get(label);
    if (!series) this.series.set(label, (series = { buckets: new Array<number>(this.upperBounds.length).fill(0), sum: 0, count: 0 }));
    const bounds = this.upperBounds;
    for (let index = 0; index < bounds.length; index++) {
      if (value <= bounds[index]!) {
        series.buckets[index]!++;
        break;
      }
    }
    series.sum += value;
    series.count++;
  }

  /** What prom-client's registry asks every metric for: cumulative buckets, +Inf, sum and count per label. */
  get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { value: number; labels: Record<string, string | number>; metricName: string }[];
  }> {
    const values: { value: number; labels: Record<string, string | number>; metricName: string }[] = [];
    for (const [label, series] of this.series) {
      let cumulative = 0;
      this.upperBounds.forEach((bound, index) => {
        cumulative += series.buckets[index]!;
        values.push({ value: cumulative, labels: { le: bound, [this.labelName]: label }, metricName: `${this.name}_bucket` });
      });
      values.push({ value: series.count, labels: { le: '+Inf', [this.labelName]: label }, metricName: `${this.name}_bucket` });
      values.push({ value: series.sum, labels: { [this.labelName]: label }, metricName: `${this.name}_sum` });
      values.push({ value: series.count, labels: { [this.labelName]: label }, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    this.series.clear();
  }
}
