// The comparison: what each transport costs per event, four bars side by side per metric.
//
// The panes show each transport's figures on their own; this puts the two costs that separate
// the transports most (bytes on the wire and HTTP requests, per event delivered) on one axis per
// metric, so the difference reads at a glance. The figures are the server's counts for this
// page's connections (`perEvent` in `stats.js`, the same computation as the panes'), and each
// bar says what it was divided from. HTML bars rather than a canvas: eight bars need no drawing
// library, and their labels stay text a reader can select and a test can read. The axis grows
// and shrinks along round values (`scale.js`), so a steady feed gives steady bars.

import { StickyBound, niceCeil } from './scale.js';
import { formatBytes, formatRatio } from './stats.js';

/** Ticks per axis maximum (1, 1.5, 2, 3, 5, 7.5 × 10ⁿ): at most 6 labels, all round. */
const TICK_STEP = new Map([
  [1, 0.25],
  [1.5, 0.5],
  [2, 0.5],
  [3, 1],
  [5, 1],
  [7.5, 2.5],
]);

const METRICS = [
  {
    key: 'bytes-per-event',
    title: 'Bytes on the wire per event',
    hint: 'written by the server: headers, chunk and frame overhead included',
    value: (f) => f.bytesPerEvent,
    format: formatBytes,
    tick: formatBytes,
    basis: (f) => `${formatBytes(f.bytes)} ÷ ${plural(f.events, 'event')}`,
    initial: 100,
  },
  {
    key: 'requests-per-event',
    title: 'HTTP requests per event',
    hint: 'a WebSocket counts its upgrade; a stream, its one request',
    value: (f) => f.requestsPerEvent,
    format: formatRatio,
    tick: (v) => String(+v.toPrecision(3)),
    basis: (f) => `${plural(f.requests, 'request')} ÷ ${plural(f.events, 'event')}`,
    initial: 1,
  },
];

export class CostChart {
  /**
   * @param {HTMLElement} element
   * @param {{series: {key:string, label:string, color:string}[]}} options one bar per series.
   */
  constructor(element, { series }) {
    this.element = element;
    this.series = series;
    this.groups = METRICS.map((metric) => this.#buildGroup(metric));
  }

  /**
   * Draws `figures` (transport → `perEvent(...)`, or null while the server has not counted for
   * it yet) at time `now` (ms, for the axis's hysteresis).
   */
  render(figures, now = performance.now()) {
    for (const group of this.groups) {
      const { metric, bound, rows, axis, element } = group;
      const values = this.series.map((s) => (figures.get(s.key) ? metric.value(figures.get(s.key)) : null));
      const known = values.filter((v) => v !== null);
      const max = bound.update(known.length > 0 ? Math.max(...known) : null, now);
      if (group.max !== max) {
        group.max = max;
        element.dataset.axisMax = String(max);
        drawAxis(axis, max, metric.tick);
        element.style.setProperty('--tick', `${(tickStep(max) / max) * 100}%`);
      }
      this.series.forEach((s, i) => {
        const f = figures.get(s.key);
        const row = rows.get(s.key);
        const v = values[i];
        row.element.dataset.value = v === null ? '' : String(v);
        if (v === null) {
          setText(row.value, f ? (f.requests > 0 ? 'no event delivered yet' : 'no requests yet') : "waiting for the server's count");
          row.value.classList.add('pending');
          setText(row.basis, '');
          row.bar.style.width = '0';
          return;
        }
        row.value.classList.remove('pending');
        setText(row.value, metric.format(v));
        setText(row.basis, metric.basis(f));
        row.bar.style.width = `${Math.min(100, (v / max) * 100)}%`;
      });
    }
  }

  /** Starts the axes over (after "Reset figures"): they fit the new figures at once. */
  reset() {
    for (const group of this.groups) group.bound.reset();
  }

  #buildGroup(metric) {
    const element = document.createElement('figure');
    element.className = 'cost-group';
    element.dataset.metric = metric.key;
    const caption = document.createElement('figcaption');
    const title = document.createElement('strong');
    title.textContent = metric.title;
    const hint = document.createElement('span');
    hint.className = 'hint';
    hint.textContent = metric.hint;
    caption.append(title, ' ', hint);
    element.append(caption);

    const rows = new Map();
    for (const s of this.series) {
      const row = document.createElement('div');
      row.className = 'cost-row';
      row.dataset.transport = s.key;
      const name = document.createElement('span');
      name.className = 'cost-name';
      name.textContent = s.label;
      const track = document.createElement('span');
      track.className = 'cost-track';
      const bar = document.createElement('span');
      bar.className = 'cost-bar';
      bar.style.background = s.color;
      track.append(bar);
      const value = document.createElement('span');
      value.className = 'cost-value';
      value.dataset.field = 'value';
      const basis = document.createElement('span');
      basis.className = 'cost-basis';
      basis.dataset.field = 'basis';
      const label = document.createElement('span');
      label.className = 'cost-label';
      label.append(value, ' ', basis);
      row.append(name, track, label);
      element.append(row);
      rows.set(s.key, { element: row, bar, value, basis });
    }
    const axis = document.createElement('div');
    axis.className = 'cost-axis';
    axis.setAttribute('aria-hidden', 'true');
    element.append(axis);
    this.element.append(element);
    const bound = new StickyBound({ side: 'max', round: niceCeil, initial: metric.initial });
    return { metric, element, rows, axis, bound, max: null };
  }
}

/** Tick labels at round values under the bars' track. */
function drawAxis(axis, max, format) {
  const step = tickStep(max);
  const ticks = [];
  for (let i = 0; i * step <= max * (1 + 1e-9); i += 1) {
    const v = i * step;
    const tick = document.createElement('span');
    tick.style.left = `${(v / max) * 100}%`;
    tick.textContent = v === 0 ? '0' : format(v);
    ticks.push(tick);
  }
  axis.replaceChildren(...ticks);
}

/** The distance between round ticks for an axis of `max` (a `niceCeil` value). */
function tickStep(max) {
  const decade = 10 ** Math.floor(Math.log10(max) + 1e-9);
  return (TICK_STEP.get(Math.round((max / decade) * 100) / 100) ?? 1) * decade;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function plural(n, word) {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}
