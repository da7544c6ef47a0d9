// Float64 reference implementations of the runtime's ops, written plainly from their definitions
// (loops over indices, no shared code with src/). The GPU results and gradients are checked
// against these and against their finite differences.
import { Arr, atBroadcast, broadcastShape, size, unravel, flatIndex } from './ndarray.js';

export function unary(a: Arr, f: (x: number) => number): Arr {
  return a.map((x) => f(x));
}

export function binary(a: Arr, b: Arr, f: (x: number, y: number) => number): Arr {
  const shape = broadcastShape(a.shape, b.shape);
  const out = Arr.zeros(shape);
  for (let i = 0; i < out.size; i++) {
    const idx = unravel(i, shape);
    out.data[i] = f(atBroadcast(a, idx), atBroadcast(b, idx));
  }
  return out;
}

export function ternary(a: Arr, b: Arr, c: Arr, f: (x: number, y: number, z: number) => number): Arr {
  const shape = broadcastShape(a.shape, b.shape, c.shape);
  const out = Arr.zeros(shape);
  for (let i = 0; i < out.size; i++) {
    const idx = unravel(i, shape);
    out.data[i] = f(atBroadcast(a, idx), atBroadcast(b, idx), atBroadcast(c, idx));
  }
  return out;
}

export function erf(x: number): number {
  // Series / continued fraction to double precision (independent of the shader's approximation).
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = x;
    let term = x;
    for (let n = 1; n < 100; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

export const fns = {
  neg: (x: number) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x: number) => 1 / Math.sqrt(x),
  abs: Math.abs,
  sigmoid: (x: number) => 1 / (1 + Math.exp(-x)),
  tanh: Math.tanh,
  relu: (x: number) => Math.max(x, 0),
  gelu: (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  elu: (alpha: number) => (x: number) => (x > 0 ? x : alpha * (Math.exp(x) - 1)),
  prelu: (x: number, w: number) => (x > 0 ? x : w * x),
};

/** Reduction over `dims` with keepdim semantics of PyTorch. */
export function reduce(a: Arr, dims: readonly number[] | null, keepdim: boolean, init: number, f: (acc: number, x: number) => number, post = (acc: number, n: number) => acc): Arr {
  const all = dims === null ? a.shape.map((_, i) => i) : dims.map((d) => (d < 0 ? d + a.ndim : d));
  const keptFull = a.shape.map((n, i) => (all.includes(i) ? 1 : n));
  const outShape = keepdim ? keptFull : a.shape.filter((_, i) => !all.includes(i));
  const acc = new Float64Array(size(keptFull)).fill(init);
  const count = size(all.map((d) => a.shape[d]));
  for (let i = 0; i < a.size; i++) {
    const idx = unravel(i, a.shape);
    const o = flatIndex(idx.map((v, d) => (all.includes(d) ? 0 : v)), keptFull);
    acc[o] = f(acc[o], a.data[i]);
  }
  return new Arr(acc.map((v) => post(v, count)), outShape);
}

export const sum = (a: Arr, dims: number[] | null = null, keepdim = false) => reduce(a, dims, keepdim, 0, (s, x) => s + x);
export const mean = (a: Arr, dims: number[] | null = null, keepdim = false) => reduce(a, dims, keepdim, 0, (s, x) => s + x, (s, n) => s / n);
export const amax = (a: Arr, dims: number[] | null = null, keepdim = false) => reduce(a, dims, keepdim, -Infinity, Math.max);
export const amin = (a: Arr, dims: number[] | null = null, keepdim = false) => reduce(a, dims, keepdim, Infinity, Math.min);

export function variance(a: Arr, dims: number[] | null, keepdim: boolean, correction = 1): Arr {
  const m = mean(a, dims, true);
  const d2 = binary(a, m, (x, y) => (x - y) ** 2);
  return reduce(d2, dims, keepdim, 0, (s, x) => s + x, (s, n) => s / (n - correction));
}

/** Index of the first maximum along dim. */
export function argmax(a: Arr, dim: number): Arr {
  const d = dim < 0 ? dim + a.ndim : dim;
  const outShape = a.shape.filter((_, i) => i !== d);
  const out = Arr.zeros(outShape);
  for (let o = 0; o < out.size; o++) {
    const idx = unravel(o, outShape);
    let best = -Infinity;
    let bi = 0;
    for (let k = 0; k < a.shape[d]; k++) {
      const full = [...idx.slice(0, d), k, ...idx.slice(d)];
      const v = a.get(full);
      if (v > best) {
        best = v;
        bi = k;
      }
    }
    out.data[o] = bi;
  }
  return out;
}

export function softmax(a: Arr, dim: number, log = false): Arr {
  const d = dim < 0 ? dim + a.ndim : dim;
  const m = amax(a, [d], true);
  const e = binary(a, m, (x, y) => Math.exp(x - y));
  const s = sum(e, [d], true);
  if (!log) return binary(e, s, (x, y) => x / y);
  const shifted = binary(a, m, (x, y) => x - y);
  return binary(shifted, s, (x, y) => x - Math.log(y));
}

/** torch.matmul for >=2-d operands with broadcast batch dims. */
export function matmul(a: Arr, b: Arr): Arr {
  const M = a.shape[a.ndim - 2];
  const K = a.shape[a.ndim - 1];
  const N = b.shape[b.ndim - 1];
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = Arr.zeros([...batch, M, N]);
  const nb = size(batch);
  // the start of each operand's matrix for batch entry bi (broadcast dims repeat)
  const start = (t: Arr, bi: number[]) => {
    const lead = t.shape.slice(0, -2);
    let f = 0;
    lead.forEach((n, i) => (f = f * n + (n === 1 ? 0 : bi[bi.length - lead.length + i])));
    return f * t.shape[t.ndim - 2] * t.shape[t.ndim - 1];
  };
  for (let bIdx = 0; bIdx < nb; bIdx++) {
    const bi = unravel(bIdx, batch);
    const oa = start(a, bi);
    const ob = start(b, bi);
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += a.data[oa + m * K + k] * b.data[ob + k * N + n];
        out.data[(bIdx * M + m) * N + n] = acc;
      }
  }
  return out;
}

export function transpose2(a: Arr): Arr {
  const [r, c] = a.shape.slice(-2);
  const lead = a.shape.slice(0, -2);
  const out = Arr.zeros([...lead, c, r]);
  for (let o = 0; o < out.size; o++) {
    const idx = unravel(o, out.shape);
    const n = idx.length;
    out.data[o] = a.get([...idx.slice(0, -2), idx[n - 1], idx[n - 2]]);
  }
  return out;
}

/** x @ w^T + b, w [out, in]. */
export function linear(x: Arr, w: Arr, b: Arr | null): Arr {
  const y = matmul(x.ndim === 1 ? x.reshape([1, x.size]) : x, transpose2(w));
  const yy = x.ndim === 1 ? y.reshape([w.shape[0]]) : y;
  return b ? binary(yy, b, (p, q) => p + q) : yy;
}

export function permute(a: Arr, dims: readonly number[]): Arr {
  const shape = dims.map((d) => a.shape[d]);
  const out = Arr.zeros(shape);
  for (let o = 0; o < out.size; o++) {
    const idx = unravel(o, shape);
    const src = new Array<number>(a.ndim);
    dims.forEach((d, i) => (src[d] = idx[i]));
    out.data[o] = a.get(src);
  }
  return out;
}

export function cat(arrs: readonly Arr[], dim: number): Arr {
  const shape = [...arrs[0].shape];
  shape[dim] = arrs.reduce((s, a) => s + a.shape[dim], 0);
  const out = Arr.zeros(shape);
  for (let o = 0; o < out.size; o++) {
    const idx = unravel(o, shape);
    let k = idx[dim];
    let i = 0;
    while (k >= arrs[i].shape[dim]) k -= arrs[i++].shape[dim];
    const src = [...idx];
    src[dim] = k;
    out.data[o] = arrs[i].get(src);
  }
  return out;
}

/** F.pad constant mode: pads = (before, after) pairs from the last dim. */
export function pad(a: Arr, pads: readonly number[], value = 0): Arr {
  const before = new Array<number>(a.ndim).fill(0);
  const after = new Array<number>(a.ndim).fill(0);
  for (let k = 0; k < pads.length / 2; k++) {
    before[a.ndim - 1 - k] = pads[2 * k];
    after[a.ndim - 1 - k] = pads[2 * k + 1];
  }
  const shape = a.shape.map((n, i) => n + before[i] + after[i]);
  const out = Arr.zeros(shape);
  for (let o = 0; o < out.size; o++) {
    const idx = unravel(o, shape);
    const src = idx.map((v, i) => v - before[i]);
    out.data[o] = src.every((v, i) => v >= 0 && v < a.shape[i]) ? a.get(src) : value;
  }
  return out;
}
