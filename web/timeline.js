// The request timeline: one lane per transport, every HTTP request a bar from sent to answered.
//
// This is the picture that explains the numbers. Short polls are a row of ticks, most of them
// empty; long polls are bars held open until an event ends them; SSE and WebSockets are one bar
// that never ends, with a mark for each event that rode it. A canvas redrawn on every animation
// frame scrolls it in real time; spans that left the window are forgotten, so memory stays flat
// however long the page runs.

/** Outcomes a request can end with (see `FeedClient`'s `onRequest`). */
const FAILED = new Set(['error', 'dropped']);
/** Event marks closer than this on one request are drawn as one: keeps high rates drawable. */
const MERGE_MARKS_MS = 4;
/** Requests a lane keeps at most: more than a 20 s window can show apart at any feed rate. */
const MAX_SPANS_PER_LANE = 5000;
/** Event marks a request keeps at most (a 20 s window at the 4 ms merge interval). */
const MAX_MARKS_PER_SPAN = 5000;

export class Timeline {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{lanes: {key:string, label:string, color:string}[], windowMs?: number,
   *   narrowWindowMs?: number, caption?: HTMLElement}} options
   *   `narrowWindowMs` applies below 560 px, where 20 s would squeeze a short poll into a pixel;
   *   `caption` gets the window's length ("Requests, last 20 s").
   */
  constructor(canvas, { lanes, windowMs = 20_000, narrowWindowMs = 10_000, caption = null }) {
    this.canvas = canvas;
    this.wideWindowMs = windowMs;
    this.narrowWindowMs = narrowWindowMs;
    this.caption = caption;
    this.lanes = lanes.map((lane) => ({ ...lane, spans: new Map() }));
    this.byKey = new Map(this.lanes.map((lane) => [lane.key, lane]));
    this.running = false;
    new ResizeObserver(() => this.#resize()).observe(canvas);
    this.#resize();
  }

  /** Feeds one `onRequest` report into lane `key`. */
  record(key, { type, id, at, outcome }) {
    const lane = this.byKey.get(key);
    if (!lane) return;
    const span = lane.spans.get(id);
    if (type === 'sent') {
      lane.spans.set(id, { start: at, end: null, outcome: null, events: [], messages: [] });
      // A hidden tab gets no animation frames, hence no drawing and no forgetting: bound the
      // lane here, oldest request first (a Map iterates in insertion order).
      if (lane.spans.size > MAX_SPANS_PER_LANE) lane.spans.delete(lane.spans.keys().next().value);
      return;
    }
    if (!span) return;
    if (type === 'event') {
      const last = span.events[span.events.length - 1];
      if (last === undefined || at - last >= MERGE_MARKS_MS) span.events.push(at);
      // The same bound for the marks of a stream that lives on in a hidden tab.
      if (span.events.length > 2 * MAX_MARKS_PER_SPAN) span.events.splice(0, MAX_MARKS_PER_SPAN);
    } else if (type === 'message') {
      span.messages.push(at);
    } else if (type === 'done') {
      span.end = at;
      span.outcome = outcome;
    }
  }

  start() {
    if (this.running) return;
    this.running = true;
    const frame = () => {
      if (!this.running) return;
      this.#draw(performance.now());
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  stop() {
    this.running = false;
  }

  #resize() {
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.canvas.getBoundingClientRect();
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
    this.canvas.width = Math.round(this.width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.ratio = ratio;
    this.windowMs = this.width < 560 ? this.narrowWindowMs : this.wideWindowMs;
    if (this.caption) this.caption.textContent = `Requests, last ${this.windowMs / 1000} s`;
    // Colours come from the stylesheet, read here rather than on every frame.
    const style = getComputedStyle(this.canvas);
    const read = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    this.colors = {
      ink: read('--ink', '#222'),
      faint: read('--faint', '#888'),
      rule: read('--rule', '#ddd'),
      failed: read('--bad', '#c00'),
    };
    this.font = `12px ${style.fontFamily}`;
  }

  #forget(now) {
    const horizon = now - this.windowMs;
    for (const lane of this.lanes) {
      for (const [id, span] of lane.spans) {
        if (span.end !== null && span.end < horizon) {
          lane.spans.delete(id);
          continue;
        }
        // A stream lives for minutes; only its marks inside the window are worth keeping.
        while (span.events.length > 0 && span.events[0] < horizon) span.events.shift();
        while (span.messages.length > 0 && span.messages[0] < horizon) span.messages.shift();
      }
    }
  }

  #draw(now) {
    this.#forget(now);
    const ctx = this.canvas.getContext('2d');
    const { ink, faint, rule, failed } = this.colors;

    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);

    const labelWidth = this.width < 560 ? 64 : 96;
    const axisHeight = 18;
    const left = labelWidth;
    const right = this.width - 6;
    const laneHeight = (this.height - axisHeight) / this.lanes.length;
    const x = (t) => left + ((t - (now - this.windowMs)) / this.windowMs) * (right - left);

    // Seconds grid, labelled every 5 s, scrolling with time ("now" at the right edge).
    ctx.font = this.font;
    ctx.textBaseline = 'middle';
    for (let s = 0; s <= this.windowMs / 1000; s += 1) {
      const gx = Math.round(x(now - s * 1000)) + 0.5;
      ctx.strokeStyle = rule;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(gx, 0);
      ctx.lineTo(gx, this.height - axisHeight);
      ctx.stroke();
      if (s % 5 === 0) {
        ctx.fillStyle = faint;
        ctx.textAlign = s === 0 ? 'right' : 'center';
        ctx.fillText(s === 0 ? 'now' : `−${s} s`, gx, this.height - axisHeight / 2);
      }
    }

    this.lanes.forEach((lane, i) => {
      const top = i * laneHeight;
      const mid = top + laneHeight / 2;
      const barHeight = Math.min(14, laneHeight * 0.45);

      ctx.fillStyle = ink;
      ctx.textAlign = 'left';
      ctx.fillText(lane.label, 4, mid);

      let lastX = -Infinity; // of the last event mark drawn in this lane
      for (const span of lane.spans.values()) {
        const x0 = Math.max(left, x(span.start));
        const x1 = Math.min(right, x(span.end ?? now));
        if (x1 < left) continue;
        // Closed requests stop short of their end, so back-to-back long polls read as separate
        // requests rather than one stream.
        const inset = span.end !== null && x1 - x0 > 6 ? 2 : 0;
        const width = Math.max(2, x1 - x0 - inset);
        const open = span.end === null;
        const empty = span.outcome === 'empty';

        ctx.globalAlpha = empty ? 0.35 : open ? 0.6 : 0.85;
        ctx.fillStyle = lane.color;
        ctx.fillRect(x0, mid - barHeight / 2, width, barHeight);
        ctx.globalAlpha = 1;
        if (FAILED.has(span.outcome)) {
          // A cut request ends in a cross, so a drop is visible at a glance.
          ctx.strokeStyle = failed;
          ctx.lineWidth = 2;
          const cx = x0 + width;
          ctx.beginPath();
          ctx.moveTo(cx - 4, mid - 4);
          ctx.lineTo(cx + 4, mid + 4);
          ctx.moveTo(cx + 4, mid - 4);
          ctx.lineTo(cx - 4, mid + 4);
          ctx.stroke();
        }

        // Each event delivered on this request: a tall mark across the bar. Marks closer than
        // 3 px in a lane are drawn once, so a fast feed reads as a dense comb, not a black bar.
        ctx.strokeStyle = ink;
        ctx.globalAlpha = 0.75;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        for (const t of span.events) {
          const ex = Math.round(x(t)) + 0.5;
          if (ex < left || ex - lastX < 3) continue;
          lastX = ex;
          ctx.moveTo(ex, mid - barHeight / 2 - 4);
          ctx.lineTo(ex, mid + barHeight / 2 + 4);
        }
        ctx.stroke();
        ctx.globalAlpha = 1;

        // Each message the client sent on this connection (WebSocket publish): a triangle
        // pointing up, toward the server.
        ctx.fillStyle = ink;
        for (const t of span.messages) {
          const mx = x(t);
          if (mx < left) continue;
          const base = mid - barHeight / 2 - 3;
          ctx.beginPath();
          ctx.moveTo(mx, base - 7);
          ctx.lineTo(mx - 4.5, base);
          ctx.lineTo(mx + 4.5, base);
          ctx.closePath();
          ctx.fill();
        }
      }

      if (i > 0) {
        ctx.strokeStyle = rule;
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.moveTo(0, Math.round(top) + 0.5);
        ctx.lineTo(this.width, Math.round(top) + 0.5);
        ctx.stroke();
      }
    });
  }
}
