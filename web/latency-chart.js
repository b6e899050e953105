// The live latency chart: one point per event per transport, on a log scale.
//
// Log scale because the transports differ by orders of magnitude: on loopback SSE and WebSocket
// deliver in well under a millisecond, long polling in about one, short polling in half its
// interval. Rows are keyed by seq, so the four transports' points for one event line up on the
// same x (the event's publish time). uPlot draws tens of thousands of points without effort,
// and the chart is redrawn a few times a second, not on every event.
//
// The y axis spans whole decades and moves only along them, growing as soon as a point would
// fall outside and shrinking only after the points have fitted fewer decades for a while
// (`scale.js`): refitting on every redraw would make a steady feed's curves jump each time one
// slow event came or went. The legend is the page's own, beside the title, so it never covers
// a curve and never shows a placeholder.

import uPlot from './vendor/uPlot.esm.js';
import { StickyBound, decadeCeil, decadeFloor } from './scale.js';

/** Floor for the log scale: a latency of 0 (or a negative one, from clock skew) is drawn here. */
const FLOOR_MS = 0.01;
/** Rows kept: at high feed rates the window is cut by count before time. */
const MAX_ROWS = 4000;
/** The y axis before any point, in ms: it never gets narrower than this. */
const INITIAL_Y_MS = [0.1, 10];
/** Up to this many decades on the axis, 2 and 5 × 10ⁿ get labels too. */
const LABEL_MINOR_DECADES = 2;

export class LatencyChart {
  /**
   * @param {HTMLElement} element
   * @param {{series: {key:string, label:string, color:string}[], windowS?: number,
   *   legend?: HTMLElement}} options `legend` gets a colour key per series.
   */
  constructor(element, { series, windowS = 60, legend = null }) {
    this.element = element;
    this.yMin = new StickyBound({ side: 'min', round: decadeFloor, initial: INITIAL_Y_MS[0] });
    this.yMax = new StickyBound({ side: 'max', round: decadeCeil, initial: INITIAL_Y_MS[1] });
    this.yRange = [...INITIAL_Y_MS];
    if (legend) drawLegend(legend, series);
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
          y: { distr: 3, log: 10, range: () => this.yRange },
        },
        series: [
          { label: 'published' },
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 1.5,
            spanGaps: true,
            points: { show: true, size: 4, fill: s.color, stroke: s.color },
          })),
        ],
        axes: [
          { ...axis, space: 70, size: 30, values: (u, ticks) => ticks.map(clockTime), label: 'published at (this machine\'s clock)', labelSize: 18, labelFont: axis.font },
          // Log axes tick every 1–9 × 10ⁿ; the powers of ten get a label, and 2 and 5 × 10ⁿ too
          // while the axis spans few decades.
          {
            ...axis,
            size: 56,
            label: 'latency (log scale)',
            labelSize: 18,
            labelFont: axis.font,
            values: (u, ticks) => ticks.map((ms) => (this.#labelled(ms) ? latencyLabel(ms) : '')),
          },
        ],
        cursor: { drag: { x: false, y: false } },
        legend: { show: false },
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
    this.yMin.reset();
    this.yMax.reset();
    this.dirty = true;
  }

  /** Redraws `hz` times a second; the x axis scrolls even when no event arrives. */
  start(hz = 4) {
    setInterval(() => this.redraw(), 1000 / hz);
  }

  redraw() {
    const before = this.yRange;
    if (this.dirty) {
      this.#forget();
      this.#fitY();
      this.plot.setData(this.#data());
      this.dirty = false;
    } else {
      // Points leave the window as it scrolls, which may let the axis shrink in time.
      this.#fitY();
      if (this.yRange !== before) this.plot.setScale('y', { min: this.yRange[0], max: this.yRange[1] });
      this.plot.setScale('x', { min: this.#xRange()[0], max: this.#xRange()[1] });
    }
    // What the axis shows, for a reader of the DOM (the axis itself is drawn on a canvas).
    const shown = `${this.plot.scales.y.min} ${this.plot.scales.y.max}`;
    if (this.element.dataset.yRange !== shown) this.element.dataset.yRange = shown;
  }

  /** The y range from the points in the window, through the sticky bounds. */
  #fitY() {
    const from = this.#xRange()[0];
    let lo = Infinity;
    let hi = -Infinity;
    for (const row of this.rows.values()) {
      if (row[0] < from) continue;
      for (let i = 1; i < row.length; i += 1) {
        const v = row[i];
        if (v === null) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    const now = performance.now();
    const range = [this.yMin.update(Number.isFinite(lo) ? lo : null, now), this.yMax.update(Number.isFinite(hi) ? hi : null, now)];
    if (range[0] !== this.yRange[0] || range[1] !== this.yRange[1]) this.yRange = range;
  }

  #labelled(ms) {
    const [min, max] = this.yRange;
    const mantissa = Math.round(ms / decadeFloor(ms));
    if (mantissa === 1) return true;
    return Math.log10(max / min) <= LABEL_MINOR_DECADES + 1e-9 && (mantissa === 2 || mantissa === 5);
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
    // Tall enough for a label at every decade of a 0.1 ms – 10 s axis.
    return { width, height: width < 500 ? 200 : 250 };
  }
}

/** Wall-clock time of `s` (seconds since the epoch) as 24-hour hh:mm:ss. */
function clockTime(s) {
  return new Date(s * 1000).toLocaleTimeString('en-GB', { hour12: false });
}

/** "10 µs", "2 ms", "100 ms", "1 s": axis labels need no decimals. */
function latencyLabel(ms) {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${Math.round(ms / 1000)} s`;
}

/** A colour key per series, as text beside the chart's title. */
function drawLegend(legend, series) {
  legend.replaceChildren(
    ...series.map((s) => {
      const item = document.createElement('span');
      item.dataset.series = s.key;
      const key = document.createElement('i');
      key.className = 'key line';
      key.style.background = s.color;
      item.append(key, s.label);
      return item;
    }),
  );
}
