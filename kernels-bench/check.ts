// The correctness column: sampled positions of an output and the max relative error of the GPU's
// values against a float64 reference computed at just those positions (so even the largest cases
// check in milliseconds). The error is scaled by the largest |reference| among the samples (sums
// cancel, so small entries carry the absolute error of large ones, as test/tolerance.ts says).

/** `count` distinct flat indices of [0, n): the first, the last, and a deterministic spread. */
export function sampleIndices(n: number, count = 48, seed = 1): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const out = new Set<number>([0, n - 1]);
  let s = seed >>> 0 || 1;
  while (out.size < count) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.add(Math.floor((s / 2 ** 32) * n));
  }
  return [...out].sort((a, b) => a - b);
}

/** max |got - want| / max |want| (NaN or Infinity in got gives Infinity). */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    const e = Math.abs(got[i] - want[i]);
    if (!Number.isFinite(got[i])) return Infinity;
    err = Math.max(err, e);
  }
  return err / Math.max(scale, 1e-30);
}

/** Unravels a flat index of a contiguous shape. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}

export const prod = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);
