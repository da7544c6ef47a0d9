// Finite-difference gradients of float64 reference functions: d/dx_i sum(f(x) * cotangent) by
// central differences, for every element or for a sample of elements of large inputs.
import { Arr } from './ndarray.js';

export type RefFn = (...inputs: Arr[]) => Arr;

/** Indices to check: all of them for small inputs, else an even spread including both ends. */
export function sampleIndices(n: number, max = 40): number[] {
  if (n <= max) return [...Array(n).keys()];
  const out = new Set<number>([0, n - 1]);
  for (let k = 1; out.size < max; k++) out.add(Math.floor((k * 0.6180339887 * n) % n));
  return [...out].sort((a, b) => a - b);
}

/** Numerical gradient of sum(f(inputs) * cot) w.r.t. inputs[which] at the given flat indices. */
export function finiteDifference(f: RefFn, inputs: Arr[], cot: Arr, which: number, indices: number[], h = 1e-6): Float64Array {
  const out = new Float64Array(indices.length);
  const x = inputs[which];
  const objective = (xs: Arr[]) => {
    const y = f(...xs);
    let s = 0;
    for (let i = 0; i < y.size; i++) s += y.data[i] * cot.data[i];
    return s;
  };
  indices.forEach((i, k) => {
    const plus = new Float64Array(x.data);
    const minus = new Float64Array(x.data);
    const step = h * Math.max(1, Math.abs(x.data[i]));
    plus[i] += step;
    minus[i] -= step;
    const xp = [...inputs];
    const xm = [...inputs];
    xp[which] = new Arr(plus, x.shape);
    xm[which] = new Arr(minus, x.shape);
    out[k] = (objective(xp) - objective(xm)) / (2 * step);
  });
  return out;
}
