import * as hdr from 'hdr-histogram-js';

/**
 * Latency histograms in microseconds. Workers record into their own, encode them (compressed
 * base64) and the coordinator decodes and adds them: percentiles of the union, not averages of
 * percentiles.
 */
export type Histogram = hdr.Histogram;

export function newHistogram(): Histogram {
  // 1 us to 5 min at 3 significant digits; JS (not wasm) so that encode/decode work everywhere.
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 300_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
}

/** Records a value, clamped into range so that one wild sample cannot throw in a hot loop. */
export function record(histogram: Histogram, valueUs: number): void {
  histogram.recordValue(Math.min(Math.max(1, Math.round(valueUs)), 300_000_000));
}

export function encodeHistogram(histogram: Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

export function mergeEncoded(encoded: Array<string | undefined>): Histogram {
  const total = newHistogram();
  for (const item of encoded) {
    if (!item) continue;
    const part = hdr.decodeFromCompressedBase64(item, 32, false);
    total.add(part);
  }
  return total;
}

/** Percentiles in milliseconds, as the reports show them. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export function summarize(histogram: Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  if (histogram.totalCount === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: histogram.totalCount,
    mean: ms(histogram.mean),
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
  };
}
