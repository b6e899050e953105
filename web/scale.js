// Axis bounds that stay put: round values from a ladder, growing at once, shrinking only late.
//
// A chart that refits its axis to the data on every redraw makes a steady feed look restless:
// one slow event stretches the axis and the next redraw snaps it back, and every bar and curve
// jumps with it. The bounds here move along a ladder of round values (1, 1.5, 2, 3, 5, 7.5 × 10ⁿ
// for a linear axis, powers of ten for a log one), so tick labels are round; they grow as soon as
// a value would not fit (never hide data), and shrink only after the data has fitted a smaller
// bound for a sustained time (`shrinkAfterMs`), so a value that comes and goes does not flap the
// axis. The latency chart and the comparison bars share this, so both behave the same.

/** Round values for a linear axis, per decade. */
const LINEAR_STEPS = [1, 1.5, 2, 3, 5, 7.5];
/** How long the data must fit a smaller bound before the axis shrinks to it (default). */
export const SHRINK_AFTER_MS = 15_000;

/** The smallest round value (`LINEAR_STEPS` × 10ⁿ) at or above `v`; `v` must be > 0. */
export function niceCeil(v) {
  const decade = 10 ** Math.floor(Math.log10(v));
  for (const step of LINEAR_STEPS) {
    // A little tolerance: 3.0000000004 (floating point) is still 3.
    if (step * decade >= v * (1 - 1e-9)) return step * decade;
  }
  return 10 * decade;
}

/** The smallest power of ten at or above `v` (> 0). */
export function decadeCeil(v) {
  return 10 ** Math.ceil(Math.log10(v) - 1e-9);
}

/** The largest power of ten at or below `v` (> 0). */
export function decadeFloor(v) {
  return 10 ** Math.floor(Math.log10(v) + 1e-9);
}

/**
 * One bound of an axis: an upper one (`side: 'max'`, the bound is ≥ every value) or a lower one
 * (`side: 'min'`, ≤ every value), on a ladder (`round`: a function from a value to the ladder
 * step that holds it, such as `niceCeil`, `decadeCeil` or `decadeFloor`).
 */
export class StickyBound {
  /**
   * @param {{side?: 'max'|'min', round: (v: number) => number, initial: number,
   *   shrinkAfterMs?: number}} o `initial` is the bound before any data, and the bound never
   *   shrinks past it.
   */
  constructor({ side = 'max', round, initial, shrinkAfterMs = SHRINK_AFTER_MS }) {
    this.side = side;
    this.round = round;
    this.initial = initial;
    this.shrinkAfterMs = shrinkAfterMs;
    this.reset();
  }

  reset() {
    this.value = this.initial;
    /** Since when (ms) the data has fitted a tighter bound, or null; and the loosest it needed. */
    this.fitsTighterSince = null;
    this.tighter = null;
  }

  /**
   * Feeds the extreme of the data now shown (`null`: no data, which keeps the bound) at time
   * `now` (ms, any monotonic clock) and returns the bound.
   */
  update(extreme, now) {
    if (extreme === null || extreme === undefined || !Number.isFinite(extreme) || extreme <= 0) return this.value;
    let wanted = this.round(extreme);
    // Never tighter than the initial bound: an empty-looking axis of 0–0.001 helps no one.
    wanted = this.side === 'max' ? Math.max(wanted, this.initial) : Math.min(wanted, this.initial);
    const outside = this.side === 'max' ? wanted > this.value : wanted < this.value;
    const tighter = this.side === 'max' ? wanted < this.value : wanted > this.value;
    if (outside) {
      this.value = wanted;
      this.fitsTighterSince = null;
    } else if (tighter) {
      if (this.fitsTighterSince === null) {
        this.fitsTighterSince = now;
        this.tighter = wanted;
      } else {
        // Shrink to what the whole calm period needed, not to the last value's bound.
        this.tighter = this.side === 'max' ? Math.max(this.tighter, wanted) : Math.min(this.tighter, wanted);
        if (now - this.fitsTighterSince >= this.shrinkAfterMs) {
          this.value = this.tighter;
          this.fitsTighterSince = null;
        }
      }
    } else {
      this.fitsTighterSince = null;
    }
    return this.value;
  }
}
