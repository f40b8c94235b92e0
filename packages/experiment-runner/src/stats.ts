import tCdf from '@stdlib/stats-base-dists-t-cdf';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';

export interface MeanCI {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1); null when n < 2. */
  sd: number | null;
  /**
   * Bounds of the 95 % t-interval for the mean; null when n < 2. When every value is equal (to 12
   * significant digits) sd is exactly 0 and the interval has zero width: see `allEqual`.
   */
  lo: number | null;
  hi: number | null;
  halfWidth: number | null;
  /** n ≥ 2 values that are all equal: no spread was observed, so the zero-width interval says little. */
  allEqual?: boolean;
}

export interface PairedComparison {
  n: number;
  meanA: number;
  meanB: number;
  /** Mean of the paired differences a − b. */
  diff: number;
  /** 95 % t-interval of the mean difference; null when n < 2. */
  ci95: [number, number] | null;
  /** Paired t-test; null when n < 2 or when every difference is equal (see `allDifferencesEqual`). */
  tTest: { t: number; df: number; p: number } | null;
  /** Wilcoxon signed-rank test (zero differences dropped), exact for n ≤ 50, normal approximation above. */
  wilcoxon: { statistic: number; p: number; exact: boolean; nonZero: number } | null;
  /** Sign-flip permutation test of the mean difference: exact for n ≤ 16, else seeded Monte Carlo. */
  permutation: { p: number; exact: boolean; resamples: number } | null;
  /**
   * n ≥ 2 paired differences that are all equal (to 12 significant digits): zero spread, a degenerate
   * case in which no test is possible (t would be ±∞ or 0/0), so `ci95`, `tTest`, `wilcoxon` and
   * `permutation` are null and no verdict of significance is drawn.
   */
  allDifferencesEqual: boolean;
}

function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

function sampleSd(values: number[]): number {
  const m = mean(values);
  return Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (values.length - 1));
}

function checkFinite(values: number[], where: string): void {
  if (!Array.isArray(values) || values.length === 0) throw new Error(`${where}: expected a non-empty array of numbers`);
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}[${i}]: expected a finite number, got ${String(v)}`);
  });
}

/** Mean with a 95 % confidence interval from the t distribution (n − 1 degrees of freedom). */
export function meanCI95(values: number[]): MeanCI {
  checkFinite(values, 'meanCI95 values');
  const n = values.length;
  const m = mean(values);
  if (n < 2) return { n, mean: m, sd: null, lo: null, hi: null, halfWidth: null };
  // Equal values summed in floating point leave an sd of ~1e-17 rather than 0; say it is exactly 0.
  if (allEqual(values)) return { n, mean: values[0], sd: 0, lo: values[0], hi: values[0], halfWidth: 0, allEqual: true };
  const sd = sampleSd(values);
  const halfWidth = tQuantile(0.975, n - 1) * (sd / Math.sqrt(n));
  return { n, mean: m, sd, lo: m - halfWidth, hi: m + halfWidth, halfWidth };
}

/**
 * Two-sided paired t-test on the differences; null when n < 2 or when all differences are equal
 * (zero variance: t would be ±∞ with p = 0, or 0/0, neither a test result).
 */
export function pairedTTest(diffs: number[]): { t: number; df: number; p: number } | null {
  const n = diffs.length;
  if (n < 2 || allEqual(diffs)) return null;
  const sd = sampleSd(diffs);
  const m = mean(diffs);
  const t = m / (sd / Math.sqrt(n));
  return { t, df: n - 1, p: Math.min(1, 2 * tCdf(-Math.abs(t), n - 1)) };
}

// Differences such as 0.84 − 0.83 and 0.80 − 0.79 differ in the last bits; rounding to 12 significant
// digits lets them tie, as they do on paper.
function roundNoise(x: number): number {
  return x === 0 ? 0 : Number(x.toPrecision(12));
}

/** Whether every value equals the first to 12 significant digits (floating-point noise ignored). */
function allEqual(values: number[]): boolean {
  const first = roundNoise(values[0]);
  return values.every((v) => roundNoise(v) === first);
}

/** Ranks with ties given their average rank (1-based). */
function averageRanks(values: number[]): number[] {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(values.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k][1]] = rank;
    i = j + 1;
  }
  return ranks;
}

function normalCdf(z: number): number {
  // Abramowitz–Stegun 7.1.26 erf; only used for n > 50 where its 1e-7 error is far below test noise.
  const t = 1 / (1 + 0.3275911 * Math.abs(z / Math.SQRT2));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(z * z) / 2);
  return z >= 0 ? (1 + y) / 2 : (1 - y) / 2;
}

/**
 * Wilcoxon signed-rank test, two-sided, zero differences dropped (SciPy's default `zero_method="wilcox"`).
 * The statistic is min(W+, W−) as in SciPy. Hand-written because the exact null distribution is a
 * short dynamic programme over the (doubled, so integral) ranks: 2^n sign patterns counted exactly,
 * which also stays exact with tied ranks.
 */
export function wilcoxonSignedRank(diffs: number[]): { statistic: number; p: number; exact: boolean; nonZero: number } | null {
  const nonZero = diffs.map(roundNoise).filter((d) => d !== 0);
  const n = nonZero.length;
  if (n === 0) return null;
  const ranks = averageRanks(nonZero.map(Math.abs));
  const wPlus = ranks.reduce((s, r, i) => s + (nonZero[i] > 0 ? r : 0), 0);
  const total = (n * (n + 1)) / 2;
  const statistic = Math.min(wPlus, total - wPlus);
  if (n <= 50) {
    const doubled = ranks.map((r) => Math.round(r * 2));
    const maxSum = doubled.reduce((s, r) => s + r, 0);
    let counts = new Float64Array(maxSum + 1);
    counts[0] = 1;
    for (const r of doubled) {
      const next = new Float64Array(maxSum + 1);
      for (let s = 0; s <= maxSum; s++) {
        if (counts[s] === 0) continue;
        next[s] += counts[s];
        next[s + r] += counts[s];
      }
      counts = next;
    }
    const all = 2 ** n;
    const limit = Math.round(statistic * 2);
    let below = 0;
    for (let s = 0; s <= limit; s++) below += counts[s];
    return { statistic, p: Math.min(1, (2 * below) / all), exact: true, nonZero: n };
  }
  const tieGroups = new Map<number, number>();
  for (const r of ranks) tieGroups.set(r, (tieGroups.get(r) ?? 0) + 1);
  let tieCorrection = 0;
  for (const t of tieGroups.values()) tieCorrection += t ** 3 - t;
  const variance = (n * (n + 1) * (2 * n + 1)) / 24 - tieCorrection / 48;
  const z = (statistic - total / 2) / Math.sqrt(variance);
  return { statistic, p: Math.min(1, 2 * normalCdf(z)), exact: false, nonZero: n };
}

/** Mulberry32: a tiny seeded generator so Monte Carlo p-values repeat exactly for a given seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Two-sided sign-flip permutation test of the mean paired difference. */
export function signFlipPermutationTest(
  diffs: number[],
  options: { seed?: number; resamples?: number } = {},
): { p: number; exact: boolean; resamples: number } | null {
  const n = diffs.length;
  if (n === 0) return null;
  const d = diffs.map(roundNoise);
  const observed = Math.abs(d.reduce((s, v) => s + v, 0));
  // Sums compared with a relative tolerance, as SciPy does, so the identity pattern always counts.
  const tolerance = 1e-9 * Math.max(1, d.reduce((s, v) => s + Math.abs(v), 0));
  if (n <= 16) {
    let extreme = 0;
    const all = 2 ** n;
    for (let mask = 0; mask < all; mask++) {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += mask & (1 << i) ? -d[i] : d[i];
      if (Math.abs(sum) >= observed - tolerance) extreme++;
    }
    return { p: extreme / all, exact: true, resamples: all };
  }
  const resamples = options.resamples ?? 20_000;
  const random = seededRandom(options.seed ?? 12345);
  let extreme = 0;
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += random() < 0.5 ? -d[i] : d[i];
    if (Math.abs(sum) >= observed - tolerance) extreme++;
  }
  return { p: (extreme + 1) / (resamples + 1), exact: false, resamples };
}

/**
 * Paired comparison of a and b (same seeds/folds in the same order): mean difference a − b with its
 * 95 % CI, paired t-test, Wilcoxon signed-rank and sign-flip permutation tests.
 */
export function pairedComparison(a: number[], b: number[], options: { seed?: number } = {}): PairedComparison {
  checkFinite(a, 'pairedComparison a');
  checkFinite(b, 'pairedComparison b');
  if (a.length !== b.length) throw new Error(`pairedComparison: a and b must pair up, got lengths ${a.length} and ${b.length}`);
  const diffs = a.map((v, i) => v - b[i]);
  const ci = meanCI95(diffs);
  const base = { n: a.length, meanA: mean(a), meanB: mean(b), diff: ci.mean };
  if (ci.allEqual) {
    // Identical differences usually mean the repetitions did not vary (a seed that changes nothing),
    // so they are not independent evidence; even the rank tests would only count signs.
    return { ...base, ci95: null, tTest: null, wilcoxon: null, permutation: null, allDifferencesEqual: true };
  }
  return {
    ...base,
    ci95: ci.lo === null || ci.hi === null ? null : [ci.lo, ci.hi],
    tTest: pairedTTest(diffs),
    wilcoxon: wilcoxonSignedRank(diffs),
    permutation: signFlipPermutationTest(diffs, options),
    allDifferencesEqual: false,
  };
}

/** Compact number for prose and tables: 3 significant digits, exponent only for very large or small values. */
export function formatNumber(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  if (x === 0) return '0';
  const abs = Math.abs(x);
  const text = abs >= 1e5 || abs < 1e-3 ? x.toExponential(digits - 1) : Number(x.toPrecision(digits)).toString();
  return text.replace('-', '−');
}

export function formatP(p: number | null | undefined): string {
  if (p === null || p === undefined || Number.isNaN(p)) return 'p = –';
  if (p < 0.001) return 'p < 0.001';
  // Three significant digits below 0.1, so a p of 0.0497 never prints as 0.05.
  return `p = ${p < 0.1 ? Number(p.toPrecision(3)) : p.toFixed(2)}`;
}

/**
 * "0.826 ± 0.0335 (95 % CI, n = 5)"; "0.826 (n = 1: no CI from a single value)"; "0.8 ± 0 (n = 3, all
 * values equal: no spread observed, so the zero-width CI says little)".
 */
/** The compact form for a table cell whose caption and n column already say what the interval is: "0.46 ± 0.14". */
export function formatMeanCI(ci: MeanCI): string {
  if (ci.halfWidth === null) return formatNumber(ci.mean);
  return `${formatNumber(ci.mean)} ± ${formatNumber(ci.halfWidth)}`;
}

export function describeMeanCI(ci: MeanCI): string {
  if (ci.halfWidth === null) return `${formatNumber(ci.mean)} (n = ${ci.n}${ci.n === 1 ? ': no CI from a single value' : ', no CI'})`;
  if (ci.allEqual) return `${formatNumber(ci.mean)} ± 0 (n = ${ci.n}, all values equal: no spread observed, so the zero-width CI says little)`;
  return `${formatNumber(ci.mean)} ± ${formatNumber(ci.halfWidth)} (95 % CI, n = ${ci.n})`;
}

/**
 * One sentence from the numbers of a paired comparison, e.g. "GHM − CE on val_acc = 0.022 (95 % CI
 * −0.0049 to 0.0489); paired t-test p = 0.09, Wilcoxon signed-rank p = 0.19 (exact), sign-flip
 * permutation p = 0.19 (exact): not significant at n = 5."
 */
export function describeComparison(
  result: PairedComparison,
  labels: { a: string; b: string; metric: string; alpha?: number },
): string {
  const alpha = labels.alpha ?? 0.05;
  const head = `${labels.a} − ${labels.b} on ${labels.metric} = ${formatNumber(result.diff)}`;
  // Also recognised from the numbers, for results made before `allDifferencesEqual` existed.
  const equalDifferences = result.allDifferencesEqual || (result.n >= 2 && result.ci95 !== null && result.ci95[0] === result.ci95[1]);
  if (result.n >= 2 && equalDifferences) {
    return `${head}: all ${result.n} paired differences are equal (d = ${formatNumber(result.diff)}), so their spread is zero and no test is possible; no verdict of significance at n = ${result.n}.`;
  }
  if (result.n < 2 || !result.tTest) return `${head}: cannot be tested with n = ${result.n} pair${result.n === 1 ? '' : 's'}.`;
  const ci = result.ci95 ? ` (95 % CI ${formatNumber(result.ci95[0])} to ${formatNumber(result.ci95[1])})` : '';
  const tests = [`paired t-test ${formatP(result.tTest.p)}`];
  if (result.wilcoxon) tests.push(`Wilcoxon signed-rank ${formatP(result.wilcoxon.p)}${result.wilcoxon.exact ? ' (exact)' : ''}`);
  if (result.permutation) tests.push(`sign-flip permutation ${formatP(result.permutation.p)}${result.permutation.exact ? ' (exact)' : ''}`);
  const significant = result.tTest.p < alpha;
  // With k non-zero differences the exact two-sided signed-rank p can never fall below 2 / 2^k
  // (zero differences are dropped, so k can be smaller than n).
  const ranked = result.wilcoxon?.nonZero ?? 0;
  const rankFloorReached = Boolean(result.wilcoxon?.exact) && 2 / 2 ** ranked >= alpha;
  const rankedPairs = ranked === result.n ? `${ranked} pairs` : `${ranked} non-zero differences of ${result.n} pairs`;
  const pct = `${Number((alpha * 100).toPrecision(3))} %`;
  let verdict: string;
  if (significant) {
    const direction = result.diff > 0 ? `${labels.a} is higher` : `${labels.a} is lower`;
    verdict = `${direction}, significant at the ${pct} level (n = ${result.n})`;
    if (result.wilcoxon && result.wilcoxon.p >= alpha) {
      verdict += rankFloorReached ? `; the signed-rank test cannot reach p < ${alpha} with ${rankedPairs}` : `, although the rank test does not confirm it`;
    }
  } else {
    verdict = `not significant at n = ${result.n}`;
    if (rankFloorReached) verdict += ` (with ${rankedPairs} the signed-rank test cannot reach p < ${alpha} at all)`;
    else if (result.wilcoxon && result.wilcoxon.p < alpha) verdict += `, although the signed-rank test, which is robust to outlying pairs, gives p < ${alpha}`;
  }
  return `${head}${ci}; ${tests.join(', ')}: ${verdict}.`;
}
