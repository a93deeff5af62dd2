import type { LatencySummary } from '../lib/histogram.js';
import type { ScenarioReport } from './types.js';

/**
 * A bar chart of latency percentiles (p50, p90, p99, p99.9, max) per run, on a log scale, so that
 * a person can look instead of read. Hand-written SVG: no dependency, opens in any browser.
 */
const PERCENTILES: Array<{ key: keyof LatencySummary; label: string; color: string }> = [
  { key: 'p50', label: 'p50', color: '#4e79a7' },
  { key: 'p90', label: 'p90', color: '#59a14f' },
  { key: 'p99', label: 'p99', color: '#f28e2b' },
  { key: 'p999', label: 'p99.9', color: '#e15759' },
  { key: 'max', label: 'max', color: '#9c755f' },
];

const BAR = 14;
const GROUP_GAP = 30;
const LEFT = 70;
const TOP = 50;
const HEIGHT = 300;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function latencyChart(report: ScenarioReport): string {
  const groups = report.runs
    .map((run) => ({ label: `${run.subject}${run.variant ? ` ${run.variant}` : ''}`, summary: run.latency[report.primaryLatency] }))
    .filter((group): group is { label: string; summary: LatencySummary } => Boolean(group.summary && group.summary.count > 0));
  const groupWidth = PERCENTILES.length * BAR + GROUP_GAP;
  const width = Math.max(420, LEFT + groups.length * groupWidth + 20);
  const totalHeight = TOP + HEIGHT + 110;
  const values = groups.flatMap((group) => PERCENTILES.map((p) => group.summary[p.key])).filter((value) => value > 0);
  const lowExp = Math.floor(Math.log10(Math.min(...values, 1)));
  const highExp = Math.ceil(Math.log10(Math.max(...values, 1) * 1.01));
  const span = Math.max(1, highExp - lowExp);
  const y = (ms: number) => TOP + HEIGHT - ((Math.log10(Math.max(ms, 10 ** lowExp)) - lowExp) / span) * HEIGHT;

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${totalHeight}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(
    `<text x="${LEFT}" y="20" font-size="14" font-weight="bold">${escape(report.title)}: ${escape(report.primaryLatency)} latency (ms, log scale)</text>`,
  );
  parts.push(
    `<text x="${LEFT}" y="36" fill="#555">${escape(`${report.startedAt} · ${report.machine.cpuModel} · ${report.machine.cores} cores · node ${report.machine.node}`)}</text>`,
  );
  for (let exp = lowExp; exp <= highExp; exp++) {
    const at = y(10 ** exp);
    parts.push(`<line x1="${LEFT}" x2="${width - 10}" y1="${at}" y2="${at}" stroke="#ddd"/>`);
    parts.push(`<text x="${LEFT - 6}" y="${at + 4}" text-anchor="end">${10 ** exp >= 1 ? 10 ** exp : (10 ** exp).toFixed(-exp)}</text>`);
  }
  groups.forEach((group, index) => {
    const x0 = LEFT + 10 + index * groupWidth;
    PERCENTILES.forEach((p, offset) => {
      const value = group.summary[p.key];
      const top = y(value);
      parts.push(
        `<rect x="${x0 + offset * BAR}" y="${top}" width="${BAR - 2}" height="${Math.max(1, TOP + HEIGHT - top)}" fill="${p.color}"><title>${escape(`${group.label} ${p.label}: ${value} ms`)}</title></rect>`,
      );
    });
    const labelX = x0 + (PERCENTILES.length * BAR) / 2;
    parts.push(
      `<text x="${labelX}" y="${TOP + HEIGHT + 14}" text-anchor="end" transform="rotate(-35 ${labelX} ${TOP + HEIGHT + 14})">${escape(group.label)}</text>`,
    );
  });
  PERCENTILES.forEach((p, index) => {
    const x = LEFT + index * 70;
    parts.push(`<rect x="${x}" y="${totalHeight - 18}" width="10" height="10" fill="${p.color}"/><text x="${x + 14}" y="${totalHeight - 9}">${p.label}</text>`);
  });
  if (groups.length === 0) parts.push(`<text x="${LEFT}" y="${TOP + 20}">no latency recorded</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
