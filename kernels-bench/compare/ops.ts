// The operations --compare runs through medseg and its peers, each a single op at a model's shape:
// inputs generated on the CPU in medseg's layout (NC..., attention [B, H, L, D]), the float64
// reference at sampled output positions, and for ONNX Runtime a one-node ONNX graph (onnx.ts).
// TensorFlow.js has channels-last convolutions and no fused attention or layer norm, so its runs
// transpose inputs and outputs outside the timed part and compose attention (matmul, softmax,
// matmul) and layer norm (moments) as a TF.js user would.
import { prod, sampleIndices, unravel } from '../check.js';
import type { OnnxNode } from './onnx.js';

export interface CompareOp {
  name: string;
  kind: 'matmul' | 'conv' | 'attention' | 'layerNorm' | 'softmax';
  conv?: { stride: number; pad: number; transposed: boolean };
  flops: number;
  /** input shapes in medseg's layout */
  inputs: Record<string, number[]>;
  outShape: number[];
  /** float64 reference at output flat index f, from the CPU inputs */
  ref(x: Record<string, Float32Array>, f: number): number;
  onnx: { node: OnnxNode; opset?: number; inputs?: (x: Record<string, Float32Array>) => Record<string, { data: Float32Array; dims: number[] }>; outDims?: number[]; output?: (y: Float32Array) => Float32Array };
}

/** Deterministic uniform values in [-1, 1). */
export function randomData(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** Permutes a dense array of `shape` by `perm` (out dim i = in dim perm[i]). */
export function permute(a: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const outShape = perm.map((p) => shape[p]);
  const inStrides = shape.map((_, i) => prod(shape.slice(i + 1)));
  const out = new Float32Array(a.length);
  for (let f = 0; f < a.length; f++) {
    const idx = unravel(f, outShape);
    let src = 0;
    for (let i = 0; i < perm.length; i++) src += idx[i] * inStrides[perm[i]];
    out[f] = a[src];
  }
  return out;
}

function convRef(x: Float32Array, w: Float32Array, b: Float32Array, xs: number[], ws: number[], outShape: number[], stride: number, pad: number, transposed: boolean, f: number): number {
  const nd = xs.length - 2;
  const [n, co, ...o] = unravel(f, outShape);
  const C = xs[1];
  const cout = transposed ? ws[1] : ws[0];
  const ksz = ws.slice(2);
  const kvol = prod(ksz);
  let acc = b[co];
  for (let ci = 0; ci < C; ci++) {
    for (let kf = 0; kf < kvol; kf++) {
      const k = unravel(kf, ksz);
      const i: number[] = [];
      let ok = true;
      for (let a = 0; a < nd && ok; a++) {
        if (transposed) {
          const t = o[a] + pad - k[a];
          if (t % stride) ok = false;
          i.push(t / stride);
        } else i.push(o[a] * stride - pad + k[a]);
        if (i[a] < 0 || i[a] >= xs[2 + a]) ok = false;
      }
      if (!ok) continue;
      let xi = n * C + ci;
      for (let a = 0; a < nd; a++) xi = xi * xs[2 + a] + i[a];
      const wi = (transposed ? ci * cout + co : co * C + ci) * kvol + kf;
      acc += x[xi] * w[wi];
    }
  }
  return acc;
}

function convOp(name: string, xs: number[], ws: number[], stride: number, pad: number, transposed: boolean): CompareOp {
  const cout = transposed ? ws[1] : ws[0];
  const sp = xs.slice(2).map((n, i) => (transposed ? (n - 1) * stride - 2 * pad + ws[2 + i] : Math.floor((n + 2 * pad - ws[2 + i]) / stride) + 1));
  const outShape = [xs[0], cout, ...sp];
  const kvol = prod(ws.slice(2));
  const nd = xs.length - 2;
  return {
    name,
    kind: 'conv',
    conv: { stride, pad, transposed },
    flops: 2 * (transposed ? prod(xs) * cout * kvol : prod(outShape) * ws[1] * kvol),
    inputs: { x: xs, w: ws, b: [cout] },
    outShape,
    ref: (x, f) => convRef(x.x, x.w, x.b, xs, ws, outShape, stride, pad, transposed, f),
    onnx: {
      node: {
        op: transposed ? 'ConvTranspose' : 'Conv',
        inputs: ['x', 'w', 'b'],
        outputs: ['y'],
        attrs: { kernel_shape: ws.slice(2), strides: new Array(nd).fill(stride), pads: new Array(2 * nd).fill(pad) },
      },
    },
  };
}

const softmaxRow = (v: number[]) => {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};

function attentionOp(name: string, B: number, H: number, L: number, D: number): CompareOp {
  const shape = [B, H, L, D];
  const scale = 1 / Math.sqrt(D);
  // ONNX Runtime's MultiHeadAttention takes [B, L, H * D]
  const toBLHD = (a: Float32Array) => ({ data: permute(a, shape, [0, 2, 1, 3]), dims: [B, L, H * D] });
  return {
    name,
    kind: 'attention',
    flops: 4 * B * H * L * L * D,
    inputs: { q: shape, k: shape, v: shape },
    outShape: shape,
    ref: (x, f) => {
      const [b, h, i, e] = unravel(f, shape);
      const base = (b * H + h) * L;
      const s: number[] = [];
      for (let j = 0; j < L; j++) {
        let d = 0;
        for (let c = 0; c < D; c++) d += x.q[(base + i) * D + c] * x.k[(base + j) * D + c];
        s.push(d * scale);
      }
      const p = softmaxRow(s);
      let acc = 0;
      for (let j = 0; j < L; j++) acc += p[j] * x.v[(base + j) * D + e];
      return acc;
    },
    onnx: {
      node: { op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: ['q', 'k', 'v'], outputs: ['y'], attrs: { num_heads: H } },
      inputs: (x) => ({ q: toBLHD(x.q), k: toBLHD(x.k), v: toBLHD(x.v) }),
      outDims: [B, L, H * D],
      output: (y) => permute(y, [B, L, H, D], [0, 2, 1, 3]),
    },
  };
}

export function compareOps(): CompareOp[] {
  const M = 256, N = 256, K = 256;
  const R = 1024, C = 768;
  const S = [12, 196, 196];
  return [
    {
      name: `matmul ${M}x${N}x${K}`,
      kind: 'matmul',
      flops: 2 * M * N * K,
      inputs: { a: [M, K], b: [K, N] },
      outShape: [M, N],
      ref: (x, f) => {
        const i = Math.floor(f / N), j = f % N;
        let s = 0;
        for (let k = 0; k < K; k++) s += x.a[i * K + k] * x.b[k * N + j];
        return s;
      },
      onnx: { node: { op: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] } },
    },
    convOp('conv2d 64->64 3x3 @ 28x28', [1, 64, 28, 28], [64, 64, 3, 3], 1, 1, false),
    convOp('conv3d 16->16 k5 @ 8x16x16', [1, 16, 8, 16, 16], [16, 16, 5, 5, 5], 1, 2, false),
    convOp('convTranspose3d 32->16 k2 s2 @ 8x16x16', [1, 32, 8, 16, 16], [32, 16, 2, 2, 2], 2, 0, true),
    attentionOp('attention 12x196x196x64 (TransUNet)', 1, 12, 196, 64),
    {
      name: `layerNorm ${R}x${C}`,
      kind: 'layerNorm',
      flops: 8 * R * C,
      inputs: { x: [R, C], w: [C], b: [C] },
      outShape: [R, C],
      ref: (x, f) => {
        const r = Math.floor(f / C), c = f % C;
        let m = 0;
        for (let j = 0; j < C; j++) m += x.x[r * C + j];
        m /= C;
        let v = 0;
        for (let j = 0; j < C; j++) v += (x.x[r * C + j] - m) ** 2;
        v /= C;
        return ((x.x[f] - m) / Math.sqrt(v + 1e-5)) * x.w[c] + x.b[c];
      },
      onnx: { node: { op: 'LayerNormalization', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { axis: -1, epsilon: { float: 1e-5 } } } },
    },
    {
      name: `softmax ${S.join('x')}`,
      kind: 'softmax',
      flops: 5 * prod(S),
      inputs: { x: S },
      outShape: S,
      ref: (x, f) => {
        const L = S[2];
        const r = Math.floor(f / L);
        const row = Array.from(x.x.subarray(r * L, (r + 1) * L));
        return softmaxRow(row)[f % L];
      },
      onnx: { node: { op: 'Softmax', inputs: ['x'], outputs: ['y'], attrs: { axis: -1 } } },
    },
  ];
}

/** Sampled output indices of an op and the reference there. */
export function referenceSamples(op: CompareOp, x: Record<string, Float32Array>): { idx: number[]; want: number[] } {
  const idx = sampleIndices(prod(op.outShape), 32);
  return { idx, want: idx.map((f) => op.ref(x, f)) };
}
