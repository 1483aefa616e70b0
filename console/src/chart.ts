/**
 * uPlot (about 23 KB gzipped, canvas, time-zone aware) for the two charts: stacked monthly bars and
 * the explorer's buckets. Fills are colours that keep 3:1 contrast on white, each with its own
 * pattern so that the shares stay apart without colour.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export type Pattern = 'solid' | 'stripes' | 'cross' | 'dots';

export const COLOURS = {
  license: '#1d4ed8',
  credits: '#047857',
  exceeding: '#b91c1c',
  unused: '#4b5563',
  final: '#1d4ed8',
  pending: '#b45309',
} as const;

const patterns = new Map<string, CanvasPattern | string>();

/** A repeating 8×8 tile: the colour on a light ground, drawn as the pattern says. */
export function patternFill(colour: string, pattern: Pattern): CanvasPattern | string {
  const cacheKey = `${colour}/${pattern}`;
  const cached = patterns.get(cacheKey);
  if (cached) return cached;
  if (pattern === 'solid') return colour;
  const tile = document.createElement('canvas');
  tile.width = tile.height = 8;
  const ctx = tile.getContext('2d')!;
  ctx.fillStyle = pattern === 'dots' ? '#f3f4f6' : '#ffffff';
  ctx.fillRect(0, 0, 8, 8);
  ctx.strokeStyle = ctx.fillStyle = colour;
  ctx.lineWidth = 2;
  if (pattern === 'dots') {
    ctx.beginPath();
    ctx.arc(4, 4, 1.5, 0, Math.PI * 2);
    ctx.fill();
  } else {
    ctx.beginPath();
    ctx.moveTo(-2, 10);
    ctx.lineTo(10, -2);
    if (pattern === 'cross') {
      ctx.moveTo(-2, -2);
      ctx.lineTo(10, 10);
    }
    ctx.stroke();
  }
  const created = ctx.createPattern(tile, 'repeat') ?? colour;
  patterns.set(cacheKey, created);
  return created;
}

export interface StackedSeries {
  label: string;
  colour: string;
  pattern: Pattern;
  values: number[];
  /** What the legend (the tooltip) shows for a bar: the exact figure. */
  shown: string[];
}

const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 2 });
/** Axis labels: "4M", "250K" (the exact figures are in the legend and the tables). */
const yAxis: uPlot.Axis = { size: 60, values: (_u, splits) => splits.map((split) => compact.format(split)) };
/** Bars start at zero, whatever the smallest value. */
const fromZero: uPlot.Scale = { range: (_u, _min, max) => [0, max > 0 ? max * 1.05 : 1] };

const widthOf = (container: HTMLElement) => Math.max(280, Math.min(960, container.clientWidth || 640));

/** Stacked bars: each series drawn as the running total, tallest first, so the lower ones cover it. */
export function stackedBars(container: HTMLElement, labels: string[], series: StackedSeries[], title: string): uPlot {
  const xs = labels.map((_, index) => index);
  const running = xs.map(() => 0);
  const stacked = series.map((s) => s.values.map((value, index) => (running[index]! += value)));
  const order = [...series.keys()].reverse();
  const bars = uPlot.paths.bars!({ size: [0.7, 64], align: 0 });
  const options: uPlot.Options = {
    title,
    width: widthOf(container),
    height: 260,
    scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: fromZero },
    axes: [
      { values: (_u, splits) => splits.map((split) => (Number.isInteger(split) ? (labels[split] ?? '') : '')), splits: () => xs, gap: 4 },
      yAxis,
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    series: [
      { label: 'Month', value: (_u, value) => (value === null || value === undefined ? '—' : (labels[Math.round(value)] ?? '—')) },
      ...order.map((index) => {
        const s = series[index]!;
        return {
          label: s.label,
          stroke: s.colour,
          width: 1,
          fill: () => patternFill(s.colour, s.pattern),
          paths: bars,
          points: { show: false },
          value: (_u: uPlot, _value: number | null, _seriesIndex: number, dataIndex: number | null) => (dataIndex === null ? '—' : (s.shown[dataIndex] ?? '—')),
        } satisfies uPlot.Series;
      }),
    ],
  };
  const data: uPlot.AlignedData = [xs, ...order.map((index) => stacked[index]!)];
  return new uPlot(options, data, container);
}

export interface TimeSeries {
  label: string;
  colour: string;
  pattern: Pattern;
  dash?: number[];
  values: (number | null)[];
}

/** Bars over time (epoch seconds), the axis in `timeZone`. */
export function timeBars(container: HTMLElement, xs: number[], series: TimeSeries[], timeZone: string, title: string): uPlot {
  // Each bar is drawn from its bucket's start rightwards, so the axis runs to the last bucket's end.
  const bars = uPlot.paths.bars!({ size: [0.8, 48], align: 1 });
  const step = xs.slice(1).reduce((smallest, x, i) => Math.min(smallest, x - xs[i]!), Infinity);
  const bucket = Number.isFinite(step) ? step : 3600;
  const options: uPlot.Options = {
    title,
    width: widthOf(container),
    height: 260,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone),
    scales: { x: { time: true, range: (_u, min, max) => [min, max + bucket] }, y: fromZero },
    axes: [{}, yAxis],
    cursor: { drag: { x: true, y: false }, points: { show: false } },
    series: [
      {},
      ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 1, dash: s.dash, fill: () => patternFill(s.colour, s.pattern), paths: bars, points: { show: false } })),
    ],
  };
  return new uPlot(options, [xs, ...series.map((s) => s.values)], container);
}
