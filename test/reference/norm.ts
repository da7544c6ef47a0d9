// Float64 references for the normalisation ops, from their definitions: two-pass mean and biased
// variance per group of elements, then (x - mean) / sqrt(var + eps) * weight + bias.
import { Arr } from './ndarray.js';

/** Normalises the elements of each group (lists of flat indices) and applies a per-element affine. */
function normalizeGroups(x: Arr, groups: number[][], eps: number, affine: (i: number) => [number, number]): Arr {
  const out = Arr.zeros(x.shape);
  for (const idx of groups) {
    let m = 0;
    for (const i of idx) m += x.data[i];
    m /= idx.length;
    let v = 0;
    for (const i of idx) v += (x.data[i] - m) ** 2;
    v /= idx.length;
    for (const i of idx) {
      const [w, b] = affine(i);
      out.data[i] = ((x.data[i] - m) / Math.sqrt(v + eps)) * w + b;
    }
  }
  return out;
}

/** Flat indices of x [N, C, S...] grouped by a key of (n, c, s). */
function groupBy(x: Arr, key: (n: number, c: number, s: number) => number, count: number): number[][] {
  const [N, C] = x.shape;
  const S = x.size / (N * C);
  const groups: number[][] = Array.from({ length: count }, () => []);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let s = 0; s < S; s++) groups[key(n, c, s)].push((n * C + c) * S + s);
  return groups;
}

const channelOf = (x: Arr) => {
  const [N, C] = x.shape;
  const S = x.size / (N * C);
  return (i: number) => Math.floor(i / S) % C;
};

function affineBy(ch: (i: number) => number, w: Arr | null, b: Arr | null) {
  return (i: number): [number, number] => [w ? w.data[ch(i)] : 1, b ? b.data[ch(i)] : 0];
}

/** Batch norm with batch statistics (training) or the given running statistics (eval). */
export function batchNorm(x: Arr, rm: Arr | null, rv: Arr | null, w: Arr | null, b: Arr | null, training: boolean, eps = 1e-5): Arr {
  const [, C] = x.shape;
  const ch = channelOf(x);
  if (training) return normalizeGroups(x, groupBy(x, (_n, c) => c, C), eps, affineBy(ch, w, b));
  return x.map((v, i) => {
    const c = ch(i);
    return ((v - rm!.data[c]) / Math.sqrt(rv!.data[c] + eps)) * (w ? w.data[c] : 1) + (b ? b.data[c] : 0);
  });
}

/** Running statistics after one training step: (1 - m) * old + m * batch stat, unbiased variance. */
export function batchNormRunning(x: Arr, rm: Arr, rv: Arr, momentum: number): { mean: Arr; var: Arr } {
  const [, C] = x.shape;
  const mean = Arr.zeros([C]);
  const vr = Arr.zeros([C]);
  for (const [c, idx] of groupBy(x, (_n, c) => c, C).entries()) {
    let m = 0;
    for (const i of idx) m += x.data[i];
    m /= idx.length;
    let v = 0;
    for (const i of idx) v += (x.data[i] - m) ** 2;
    v /= idx.length - 1;
    mean.data[c] = (1 - momentum) * rm.data[c] + momentum * m;
    vr.data[c] = (1 - momentum) * rv.data[c] + momentum * v;
  }
  return { mean, var: vr };
}

export function groupNorm(x: Arr, G: number, w: Arr | null, b: Arr | null, eps = 1e-5): Arr {
  const [N, C] = x.shape;
  const Cg = C / G;
  return normalizeGroups(x, groupBy(x, (n, c) => n * G + Math.floor(c / Cg), N * G), eps, affineBy(channelOf(x), w, b));
}

/** Over the last `nd` dims; w and b have those dims' shape. */
export function layerNorm(x: Arr, nd: number, w: Arr | null, b: Arr | null, eps = 1e-5): Arr {
  const D = x.shape.slice(x.ndim - nd).reduce((a, c) => a * c, 1);
  const rows = x.size / D;
  const groups = Array.from({ length: rows }, (_, r) => Array.from({ length: D }, (_, e) => r * D + e));
  return normalizeGroups(x, groups, eps, affineBy((i) => i % D, w, b));
}

/** Over the channels of each (n, position) of [N, C, ...]. */
export function layerNorm2d(x: Arr, w: Arr | null, b: Arr | null, eps = 1e-6): Arr {
  const [N, C] = x.shape;
  const S = x.size / (N * C);
  return normalizeGroups(x, groupBy(x, (n, _c, s) => n * S + s, N * S), eps, affineBy(channelOf(x), w, b));
}

/** StdConv2d's weight: per output channel, (W - mean) / sqrt(biased var + eps). */
export function weightStandardize(w: Arr, eps = 1e-5): Arr {
  return layerNorm(w.reshape([w.shape[0], w.size / w.shape[0]]), 1, null, null, eps).reshape(w.shape);
}
