// Float64 references for the losses, written from their definitions with plain loops:
// soft Dice (V-Net / MONAI / TransUNet forms), cross entropy over dim 1 with class weights and an
// ignored label (PyTorch's weighted mean), and binary cross entropy on logits.
import { Arr, size } from './ndarray.js';

export type Red = 'mean' | 'sum' | 'none';

function reduceRef(values: number[], shape: number[], r: Red): Arr {
  if (r === 'none') return Arr.from(values, shape);
  const s = values.reduce((a, b) => a + b, 0);
  return Arr.from([r === 'sum' ? s : s / values.length], []);
}

/** [N, ...] labels -> [N, C, ...] one-hot (0 rows for labels outside [0, C)). */
export function oneHotDim1Ref(labels: Arr, C: number): Arr {
  const N = labels.shape[0];
  const S = size(labels.shape.slice(1));
  const out = Arr.zeros([N, C, ...labels.shape.slice(1)]);
  for (let n = 0; n < N; n++)
    for (let s = 0; s < S; s++) {
      const c = labels.data[n * S + s];
      if (c >= 0 && c < C) out.data[(n * C + c) * S + s] = 1;
    }
  return out;
}

export interface DiceRefOptions {
  smoothNr: number;
  smoothDr: number;
  squaredPred: boolean;
  batch: boolean;
  includeBackground: boolean;
  weight?: number[];
  reduction: Red;
}

export function diceRef(p: Arr, g: Arr, o: DiceRefOptions): Arr {
  const [N, C] = p.shape;
  const S = size(p.shape.slice(2));
  const c0 = o.includeBackground ? 0 : 1;
  const groups = o.batch ? [[...Array(N).keys()]] : [...Array(N).keys()].map((n) => [n]);
  const losses: number[] = [];
  for (const ns of groups) {
    for (let c = c0; c < C; c++) {
      let inter = 0;
      let ps = 0;
      let gs = 0;
      for (const n of ns)
        for (let s = 0; s < S; s++) {
          const i = (n * C + c) * S + s;
          inter += p.data[i] * g.data[i];
          ps += o.squaredPred ? p.data[i] * p.data[i] : p.data[i];
          gs += o.squaredPred ? g.data[i] * g.data[i] : g.data[i];
        }
      const f = 1 - (2 * inter + o.smoothNr) / (ps + gs + o.smoothDr);
      losses.push(f * (o.weight ? o.weight[c - c0] : 1));
    }
  }
  return reduceRef(losses, o.batch ? [C - c0] : [N, C - c0], o.reduction);
}

export function crossEntropyRef(x: Arr, target: Arr, o: { weight?: number[]; ignoreIndex: number; reduction: Red }): Arr {
  const [N, C] = x.shape;
  const S = size(x.shape.slice(2));
  const losses: number[] = [];
  let wsum = 0;
  for (let n = 0; n < N; n++)
    for (let s = 0; s < S; s++) {
      const t = target.data[n * S + s];
      if (t === o.ignoreIndex) {
        losses.push(0);
        continue;
      }
      let m = -Infinity;
      for (let c = 0; c < C; c++) m = Math.max(m, x.data[(n * C + c) * S + s]);
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp(x.data[(n * C + c) * S + s] - m);
      const logp = x.data[(n * C + t) * S + s] - m - Math.log(z);
      const w = o.weight ? o.weight[t] : 1;
      losses.push(-w * logp);
      wsum += w;
    }
  if (o.reduction === 'mean') return Arr.from([losses.reduce((a, b) => a + b, 0) / wsum], []);
  return reduceRef(losses, [N, ...x.shape.slice(2)], o.reduction);
}

/** Cross entropy with class-probability targets of the logits' shape. */
export function crossEntropyProbRef(x: Arr, t: Arr, reduction: Red): Arr {
  const [N, C] = x.shape;
  const S = size(x.shape.slice(2));
  const losses: number[] = [];
  for (let n = 0; n < N; n++)
    for (let s = 0; s < S; s++) {
      let m = -Infinity;
      for (let c = 0; c < C; c++) m = Math.max(m, x.data[(n * C + c) * S + s]);
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp(x.data[(n * C + c) * S + s] - m);
      let l = 0;
      for (let c = 0; c < C; c++) l -= t.data[(n * C + c) * S + s] * (x.data[(n * C + c) * S + s] - m - Math.log(z));
      losses.push(l);
    }
  return reduceRef(losses, [N, ...x.shape.slice(2)], reduction);
}

/** -[pw t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] * w; pw indexed by the last dim. */
export function bceWithLogitsRef(x: Arr, t: Arr, o: { posWeight?: number[]; weight?: number[]; reduction: Red }): Arr {
  const last = x.shape[x.ndim - 1];
  const losses: number[] = [];
  for (let i = 0; i < x.size; i++) {
    const v = x.data[i];
    const pw = o.posWeight ? o.posWeight[i % last] : 1;
    // log sigmoid(v) and log(1 - sigmoid(v)) without overflow
    const logSig = v >= 0 ? -Math.log1p(Math.exp(-v)) : v - Math.log1p(Math.exp(v));
    const log1mSig = logSig - v;
    const l = -(pw * t.data[i] * logSig + (1 - t.data[i]) * log1mSig);
    losses.push(l * (o.weight ? o.weight[i % last] : 1));
  }
  return reduceRef(losses, [...x.shape], o.reduction);
}
