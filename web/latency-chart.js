// The live latency chart: one point per event per transport, on a log scale.
//
// Log scale because the transports differ by orders of magnitude: on loopback SSE and WebSocket
// deliver in well under a millisecond, long polling in about one, short polling in half its
// interval. Rows are keyed by seq, so the four transports' points for one event line up on the
// same x (the event's publish time). uPlot draws tens of thousands of points without effort,
// and the chart is redrawn a few times a second, not on every event.

import uPlot from './vendor/uPlot.esm.js';
import { formatMicros } from './stats.js';

/** Floor for the log scale: a latency of 0 (or a negative one, from clock skew) is drawn here. */
const FLOOR_MS = 0.01;
/** Rows kept: at high feed rates the window is cut by count before time. */
const MAX_ROWS = 4000;

export class LatencyChart {
  /**
   * @param {HTMLElement} element
   * @param {{series: {key:string, label:string, color:string}[], windowS?: number}} options
   */
  constructor(element, { series, windowS = 60 }) {
    this.element = element;
    this.series = series;
    this.index = new Map(series.map((s, i) => [s.key, i]));
    this.windowS = windowS;
    /** seq → [publish time in s, latency in ms per series…] */
    this.rows = new Map();
    this.dirty = true;

    const style = getComputedStyle(element);
    const faint = style.getPropertyValue('--faint').trim() || '#888';
    const rule = style.getPropertyValue('--rule').trim() || '#ddd';
    const axis = { stroke: faint, grid: { stroke: rule, width: 1 }, ticks: { stroke: rule, width: 1 }, font: '11px system-ui, sans-serif' };
    this.plot = new uPlot(
      {
        ...this.#size(),
        scales: {
          x: { time: true, range: () => this.#xRange() },
          y: { distr: 3, log: 10 },
        },
        series: [
          { label: 'published', value: (u, v) => (v == null ? '–' : clockTime(v)) },
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 1.5,
            spanGaps: true,
            points: { show: true, size: 4, fill: s.color, stroke: s.color },
            value: (u, v) => (v == null ? '–' : formatMicros(v * 1000)),
          })),
        ],
        axes: [
          { ...axis, space: 70, values: (u, ticks) => ticks.map(clockTime) },
          // Log axes tick every 1–9 × 10ⁿ; only the powers of ten get a label.
          { ...axis, size: 62, values: (u, ticks) => ticks.map((ms) => (isPowerOfTen(ms) ? powerOfTenLabel(ms) : '')) },
        ],
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
      },
      this.#data(),
      element,
    );
    new ResizeObserver(() => this.plot.setSize(this.#size())).observe(element);
  }

  /** Adds one event's latency (µs) as seen by transport `key`. */
  record(key, seq, tsMicros, latencyMicros) {
    const column = this.index.get(key);
    if (column === undefined) return;
    let row = this.rows.get(seq);
    if (!row) {
      row = [tsMicros / 1e6, ...this.series.map(() => null)];
      this.rows.set(seq, row);
      if (this.rows.size > MAX_ROWS) this.rows.delete(this.rows.keys().next().value);
    }
    row[column + 1] = Math.max(FLOOR_MS, latencyMicros / 1000);
    this.dirty = true;
  }

  clear() {
    this.rows.clear();
    this.dirty = true;
  }

  /** Redraws `hz` times a second; the x axis scrolls even when no event arrives. */
  start(hz = 4) {
    setInterval(() => this.redraw(), 1000 / hz);
  }

  redraw() {
    if (this.dirty) {
      this.#forget();
      this.plot.setData(this.#data());
      this.dirty = false;
    } else {
      this.plot.setScale('x', { min: this.#xRange()[0], max: this.#xRange()[1] });
    }
  }

  #xRange() {
    const now = Date.now() / 1000;
    return [now - this.windowS, now];
  }

  #forget() {
    const horizon = Date.now() / 1000 - this.windowS - 5;
    for (const [seq, row] of this.rows) {
      if (row[0] >= horizon) break;
      this.rows.delete(seq);
    }
  }

  #data() {
    const rows = [...this.rows.entries()].sort((a, b) => a[0] - b[0]).map(([, row]) => row);
    return [0, ...this.series.map((_, i) => i + 1)].map((c) => rows.map((row) => row[c]));
  }

  #size() {
    const width = Math.max(200, this.element.clientWidth);
    return { width, height: width < 500 ? 160 : 170 };
  }
}

/** Wall-clock time of `s` (seconds since the epoch) as 24-hour hh:mm:ss. */
function clockTime(s) {
  return new Date(s * 1000).toLocaleTimeString('en-GB', { hour12: false });
}

/** "10 µs", "1 ms", "100 ms", "1 s": axis labels need no decimals. */
function powerOfTenLabel(ms) {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${Math.round(ms / 1000)} s`;
}

function isPowerOfTen(v) {
  const exponent = Math.log10(v);
  return Math.abs(exponent - Math.round(exponent)) < 1e-9;
}
