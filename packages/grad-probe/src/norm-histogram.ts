export interface NormHistogram {
  /** bins + 1 increasing edges; bin i is [edges[i], edges[i+1]), the last bin also holds its right edge. */
  edges: number[];
  counts: number[];
  n: number;
  min: number;
  max: number;
}

/**
 * Histogram of values (e.g. `GradientSet.norms` of per-sample gradients) over `bins` equal-width
 * bins from min to max, or over explicit increasing `edges` (values outside them are not counted).
 * Written by hand: it is a dozen lines and keeps the output plain JSON for the spec builders.
 */
export function normHistogram(values: readonly number[] | Float32Array | Float64Array, bins: number | readonly number[] = 20): NormHistogram {
  const where = 'grad-probe normHistogram';
  if (values == null || typeof values.length !== 'number' || values.length === 0) {
    throw new Error(`${where}: values must be a non-empty array of numbers`);
  }
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) throw new Error(`${where}: values[${i}] is not finite (${v})`);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  let edges: number[];
  if (typeof bins === 'number') {
    if (!Number.isInteger(bins) || bins < 1) throw new Error(`${where}: bins must be a positive integer or an array of edges, got ${bins}`);
    // All values equal: centre one unit-wide range on them so the bins have a width.
    const lo = min === max ? min - 0.5 : min;
    const hi = min === max ? max + 0.5 : max;
    edges = Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
    edges[bins] = hi;
  } else {
    edges = [...bins];
    if (edges.length < 2 || !edges.every((e, i) => Number.isFinite(e) && (i === 0 || e > edges[i - 1]))) {
      throw new Error(`${where}: bins as edges must be at least 2 finite, strictly increasing numbers`);
    }
  }
  const last = edges.length - 2;
  const counts = new Array<number>(last + 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < edges[0] || v > edges[last + 1]) continue;
    // Binary search for the bin whose left edge is the largest one ≤ v.
    let lo = 0;
    let hi = last;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (edges[mid] <= v) lo = mid;
      else hi = mid - 1;
    }
    counts[lo]++;
  }
  return { edges, counts, n: values.length, min, max };
}
