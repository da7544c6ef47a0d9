// Float64 references for convolution, transposed convolution and pooling, from their definitions
// (plain loops over 3 spatial axes; 1d and 2d inputs get leading unit axes). The transposed conv
// is written as a scatter (each input adds into the outputs it reaches), independent of the
// gather form the GPU uses. The analytic input, weight and bias gradients of both read the same
// index relation (output o, tap k, input i = o*s - p + k*dil) the other way round.
import { Arr } from './ndarray.js';

export interface RefConvOptions {
  stride?: number[];
  /** leading padding per axis */
  padBefore?: number[];
  /** trailing padding per axis (default: padBefore) */
  padAfter?: number[];
  dilation?: number[];
  groups?: number;
}

/** Spatial geometry lifted to 3 axes. */
function lift(v: number[] | undefined, nd: number, fill: number): number[] {
  const full = v ?? new Array<number>(nd).fill(fill);
  return [...new Array<number>(3 - nd).fill(fill), ...full];
}

function sp3(shape: readonly number[]): number[] {
  const s = shape.slice(2);
  return [...new Array<number>(3 - s.length).fill(1), ...s];
}

/** y[n, co, o] = b[co] + sum_{ci in co's group, k} w[co, ci, k] * x[n, ci, o*s - pb + k*dil]. */
export function conv(x: Arr, w: Arr, b: Arr | null, o: RefConvOptions = {}): Arr {
  const nd = x.ndim - 2;
  const [N, Cin] = x.shape;
  const [Cout, CinG] = w.shape;
  const G = o.groups ?? 1;
  const s = lift(o.stride, nd, 1);
  const pb = lift(o.padBefore, nd, 0);
  const pa = lift(o.padAfter ?? o.padBefore, nd, 0);
  const d = lift(o.dilation, nd, 1);
  const I = sp3(x.shape);
  const K = sp3(w.shape);
  const O = I.map((n, a) => Math.floor((n + pb[a] + pa[a] - d[a] * (K[a] - 1) - 1) / s[a]) + 1);
  const out = Arr.zeros([N, Cout, ...O.slice(3 - nd)]);
  const CoutG = Cout / G;
  let idx = 0;
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / CoutG);
      for (let o0 = 0; o0 < O[0]; o0++)
        for (let o1 = 0; o1 < O[1]; o1++)
          for (let o2 = 0; o2 < O[2]; o2++) {
            let acc = b ? b.data[co] : 0;
            for (let ci = 0; ci < CinG; ci++) {
              const c = g * CinG + ci;
              for (let k0 = 0; k0 < K[0]; k0++) {
                const i0 = o0 * s[0] - pb[0] + k0 * d[0];
                if (i0 < 0 || i0 >= I[0]) continue;
                for (let k1 = 0; k1 < K[1]; k1++) {
                  const i1 = o1 * s[1] - pb[1] + k1 * d[1];
                  if (i1 < 0 || i1 >= I[1]) continue;
                  for (let k2 = 0; k2 < K[2]; k2++) {
                    const i2 = o2 * s[2] - pb[2] + k2 * d[2];
                    if (i2 < 0 || i2 >= I[2]) continue;
                    const xv = x.data[(((n * Cin + c) * I[0] + i0) * I[1] + i1) * I[2] + i2];
                    const wv = w.data[(((co * CinG + ci) * K[0] + k0) * K[1] + k1) * K[2] + k2];
                    acc += xv * wv;
                  }
                }
              }
            }
            out.data[idx++] = acc;
          }
    }
  return out;
}

export interface RefConvTransposeOptions {
  stride?: number[];
  padding?: number[];
  outputPadding?: number[];
  dilation?: number[];
  groups?: number;
}

/** Scatter form: every x[n, ci, i] adds x * w[ci, co, k] into y[n, g*CoutG + co, i*s - p + k*dil]. */
export function convTranspose(x: Arr, w: Arr, b: Arr | null, o: RefConvTransposeOptions = {}): Arr {
  const nd = x.ndim - 2;
  const [N, Cin] = x.shape;
  const CoutG = w.shape[1];
  const G = o.groups ?? 1;
  const Cout = CoutG * G;
  const CinG = Cin / G;
  const s = lift(o.stride, nd, 1);
  const p = lift(o.padding, nd, 0);
  const op = lift(o.outputPadding, nd, 0);
  const d = lift(o.dilation, nd, 1);
  const I = sp3(x.shape);
  const K = sp3(w.shape);
  const O = I.map((n, a) => (n - 1) * s[a] - 2 * p[a] + d[a] * (K[a] - 1) + op[a] + 1);
  const out = Arr.zeros([N, Cout, ...O.slice(3 - nd)]);
  const at = (n: number, c: number, j0: number, j1: number, j2: number) => (((n * Cout + c) * O[0] + j0) * O[1] + j1) * O[2] + j2;
  for (let n = 0; n < N; n++)
    for (let c = 0; c < Cout; c++)
      for (let j = 0; j < O[0] * O[1] * O[2]; j++) out.data[(n * Cout + c) * O[0] * O[1] * O[2] + j] = b ? b.data[c] : 0;
  for (let n = 0; n < N; n++)
    for (let ci = 0; ci < Cin; ci++) {
      const g = Math.floor(ci / CinG);
      for (let i0 = 0; i0 < I[0]; i0++)
        for (let i1 = 0; i1 < I[1]; i1++)
          for (let i2 = 0; i2 < I[2]; i2++) {
            const xv = x.data[(((n * Cin + ci) * I[0] + i0) * I[1] + i1) * I[2] + i2];
            for (let co = 0; co < CoutG; co++)
              for (let k0 = 0; k0 < K[0]; k0++) {
                const j0 = i0 * s[0] - p[0] + k0 * d[0];
                if (j0 < 0 || j0 >= O[0]) continue;
                for (let k1 = 0; k1 < K[1]; k1++) {
                  const j1 = i1 * s[1] - p[1] + k1 * d[1];
                  if (j1 < 0 || j1 >= O[1]) continue;
                  for (let k2 = 0; k2 < K[2]; k2++) {
                    const j2 = i2 * s[2] - p[2] + k2 * d[2];
                    if (j2 < 0 || j2 >= O[2]) continue;
                    const wv = w.data[(((ci * CoutG + co) * K[0] + k0) * K[1] + k1) * K[2] + k2];
                    out.data[at(n, g * CoutG + co, j0, j1, j2)] += xv * wv;
                  }
                }
              }
          }
    }
  return out;
}

// ---- analytic backward (float64), for gradients at sizes where finite differences are too slow ----

interface ConvGeom {
  nd: number;
  G: number;
  s: number[];
  pb: number[];
  d: number[];
  I: number[];
  K: number[];
  O: number[];
}

/** The conv's geometry from x's shape, w's shape and the options (O as the forward computes it). */
function convGeom(xShape: readonly number[], wShape: readonly number[], o: RefConvOptions): ConvGeom {
  const nd = xShape.length - 2;
  const s = lift(o.stride, nd, 1);
  const pb = lift(o.padBefore, nd, 0);
  const pa = lift(o.padAfter ?? o.padBefore, nd, 0);
  const d = lift(o.dilation, nd, 1);
  const I = sp3(xShape);
  const K = sp3(wShape);
  const O = I.map((n, a) => Math.floor((n + pb[a] + pa[a] - d[a] * (K[a] - 1) - 1) / s[a]) + 1);
  return { nd, G: o.groups ?? 1, s, pb, d, I, K, O };
}

/**
 * Visits every (output o, tap k, input i) triple of a conv with i = o*s - pb + k*dil inside the input,
 * as flat spatial indices: f(oFlat, kFlat, iFlat).
 */
function forEachTap(g: ConvGeom, f: (o: number, k: number, i: number) => void): void {
  const { s, pb, d, I, K, O } = g;
  for (let o0 = 0; o0 < O[0]; o0++)
    for (let k0 = 0; k0 < K[0]; k0++) {
      const i0 = o0 * s[0] - pb[0] + k0 * d[0];
      if (i0 < 0 || i0 >= I[0]) continue;
      for (let o1 = 0; o1 < O[1]; o1++)
        for (let k1 = 0; k1 < K[1]; k1++) {
          const i1 = o1 * s[1] - pb[1] + k1 * d[1];
          if (i1 < 0 || i1 >= I[1]) continue;
          for (let o2 = 0; o2 < O[2]; o2++)
            for (let k2 = 0; k2 < K[2]; k2++) {
              const i2 = o2 * s[2] - pb[2] + k2 * d[2];
              if (i2 < 0 || i2 >= I[2]) continue;
              f((o0 * O[1] + o1) * O[2] + o2, (k0 * K[1] + k1) * K[2] + k2, (i0 * I[1] + i1) * I[2] + i2);
            }
        }
    }
}

/** The (o, k, i) triples of a geometry as three flat index lists (computed once, used per channel pair). */
function tapTriples(g: ConvGeom): [Int32Array, Int32Array, Int32Array] {
  const os: number[] = [];
  const ks: number[] = [];
  const is: number[] = [];
  forEachTap(g, (o, k, i) => {
    os.push(o);
    ks.push(k);
    is.push(i);
  });
  return [Int32Array.from(os), Int32Array.from(ks), Int32Array.from(is)];
}

/**
 * Every (n, a, b) a grouped conv connects: a over the A channels of one operand and b over the Bg
 * channels of a's group in the other (conv: a = co of gy, b = ci of x; transposed: a = ci of x,
 * b = co of gy). Calls f with the element bases of [n, a] (av per channel), of
 * [n, group(a) * Bg + b] (bv per channel) and of the weight's [a, b] (kv per pair).
 */
function forEachChannelPair(N: number, A: number, Bg: number, G: number, av: number, bv: number, kv: number, f: (aBase: number, bBase: number, wBase: number) => void): void {
  const Ag = A / G;
  for (let n = 0; n < N; n++)
    for (let a = 0; a < A; a++) {
      const grp = Math.floor(a / Ag);
      for (let b = 0; b < Bg; b++) f((n * A + a) * av, (n * Bg * G + grp * Bg + b) * bv, (a * Bg + b) * kv);
    }
}

/**
 * The input gradient of conv: dx[n, c, i] = sum_{co in c's group, k : i = o*s - pb + k*dil} w[co, ci, k] * gy[n, co, o]
 * (gy the gradient of the conv's output, c = group*CinG + ci).
 */
export function convInputGrad(gy: Arr, w: Arr, xShape: readonly number[], o: RefConvOptions = {}): Arr {
  const geo = convGeom(xShape, w.shape, o);
  const [N, Cin] = xShape;
  const [Cout, CinG] = w.shape;
  const CoutG = Cout / geo.G;
  const iv = geo.I[0] * geo.I[1] * geo.I[2];
  const ov = geo.O[0] * geo.O[1] * geo.O[2];
  const kv = geo.K[0] * geo.K[1] * geo.K[2];
  const [os, ks, is] = tapTriples(geo);
  const dx = Arr.zeros(xShape);
  forEachChannelPair(N, Cout, CinG, geo.G, ov, iv, kv, (gb, xb, wb) => {
    for (let t = 0; t < os.length; t++) dx.data[xb + is[t]] += w.data[wb + ks[t]] * gy.data[gb + os[t]];
  });
  return dx;
}

/** The weight gradient of conv: dw[co, ci, k] = sum_{n, o} gy[n, co, o] * x[n, group*CinG + ci, o*s - pb + k*dil]. */
export function convWeightGrad(gy: Arr, x: Arr, wShape: readonly number[], o: RefConvOptions = {}): Arr {
  const geo = convGeom(x.shape, wShape, o);
  const [N, Cin] = x.shape;
  const [Cout, CinG] = wShape;
  const CoutG = Cout / geo.G;
  const iv = geo.I[0] * geo.I[1] * geo.I[2];
  const ov = geo.O[0] * geo.O[1] * geo.O[2];
  const kv = geo.K[0] * geo.K[1] * geo.K[2];
  const [os, ks, is] = tapTriples(geo);
  const dw = Arr.zeros(wShape);
  forEachChannelPair(N, Cout, CinG, geo.G, ov, iv, kv, (gb, xb, wb) => {
    for (let t = 0; t < os.length; t++) dw.data[wb + ks[t]] += gy.data[gb + os[t]] * x.data[xb + is[t]];
  });
  return dw;
}

/** The transposed conv's scatter j = i*s - p + k*dil read as a conv geometry from y (the output) to x: "I" is y's size, "O" x's. */
function transposeGeom(xShape: readonly number[], wShape: readonly number[], o: RefConvTransposeOptions): ConvGeom {
  const nd = xShape.length - 2;
  const s = lift(o.stride, nd, 1);
  const p = lift(o.padding, nd, 0);
  const op = lift(o.outputPadding, nd, 0);
  const d = lift(o.dilation, nd, 1);
  const X = sp3(xShape);
  const K = sp3(wShape);
  const Y = X.map((n, a) => (n - 1) * s[a] - 2 * p[a] + d[a] * (K[a] - 1) + op[a] + 1);
  return { nd, G: o.groups ?? 1, s, pb: p, d, I: Y, K, O: X };
}

/** The input gradient of the transposed conv: dx[n, ci, i] = sum_{co, k} w[ci, co, k] * gy[n, group*CoutG + co, i*s - p + k*dil]. */
export function convTransposeInputGrad(gy: Arr, w: Arr, xShape: readonly number[], o: RefConvTransposeOptions = {}): Arr {
  const geo = transposeGeom(xShape, w.shape, o);
  const [N, Cin] = xShape;
  const CoutG = w.shape[1];
  const Cout = CoutG * geo.G;
  const CinG = Cin / geo.G;
  const xv = geo.O[0] * geo.O[1] * geo.O[2];
  const yv = geo.I[0] * geo.I[1] * geo.I[2];
  const kv = geo.K[0] * geo.K[1] * geo.K[2];
  const [xs, ks, ys] = tapTriples(geo);
  const dx = Arr.zeros(xShape);
  forEachChannelPair(N, Cin, CoutG, geo.G, xv, yv, kv, (xb, yb, wb) => {
    for (let t = 0; t < xs.length; t++) dx.data[xb + xs[t]] += w.data[wb + ks[t]] * gy.data[yb + ys[t]];
  });
  return dx;
}

/** The weight gradient of the transposed conv: dw[ci, co, k] = sum_{n, i} x[n, ci, i] * gy[n, group*CoutG + co, i*s - p + k*dil]. */
export function convTransposeWeightGrad(gy: Arr, x: Arr, wShape: readonly number[], o: RefConvTransposeOptions = {}): Arr {
  const geo = transposeGeom(x.shape, wShape, o);
  const [N, Cin] = x.shape;
  const CoutG = wShape[1];
  const Cout = CoutG * geo.G;
  const CinG = Cin / geo.G;
  const xv = geo.O[0] * geo.O[1] * geo.O[2];
  const yv = geo.I[0] * geo.I[1] * geo.I[2];
  const kv = geo.K[0] * geo.K[1] * geo.K[2];
  const [xs, ks, ys] = tapTriples(geo);
  const dw = Arr.zeros(wShape);
  forEachChannelPair(N, Cin, CoutG, geo.G, xv, yv, kv, (xb, yb, wb) => {
    for (let t = 0; t < xs.length; t++) dw.data[wb + ks[t]] += x.data[xb + xs[t]] * gy.data[yb + ys[t]];
  });
  return dw;
}

/** The bias gradient of either conv: db[c] = sum_{n, o} gy[n, c, o]. */
export function convBiasGrad(gy: Arr): Arr {
  const [N, C] = gy.shape;
  const v = gy.size / (N * C);
  const db = Arr.zeros([C]);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++) {
      let acc = 0;
      for (let j = 0; j < v; j++) acc += gy.data[(n * C + c) * v + j];
      db.data[c] += acc;
    }
  return db;
}

export interface RefPoolOptions {
  kernel: number[];
  stride?: number[];
  padding?: number[];
  ceilMode?: boolean;
  countIncludePad?: boolean;
}

function poolGeometry(x: Arr, o: RefPoolOptions) {
  const [, , H, W] = x.shape;
  const k = o.kernel;
  const s = o.stride ?? k;
  const p = o.padding ?? [0, 0];
  const size = (n: number, a: number) => {
    const span = n + 2 * p[a] - k[a];
    let out = (o.ceilMode ? Math.ceil(span / s[a]) : Math.floor(span / s[a])) + 1;
    // PyTorch: the last window must start inside the input or its leading padding.
    if (o.ceilMode && (out - 1) * s[a] >= n + p[a]) out--;
    return out;
  };
  return { H, W, k, s, p, OH: size(H, 0), OW: size(W, 1) };
}

/** Max over each window (padding never wins). */
export function maxPool2d(x: Arr, o: RefPoolOptions): Arr {
  const [N, C] = x.shape;
  const { H, W, k, s, p, OH, OW } = poolGeometry(x, o);
  const out = Arr.zeros([N, C, OH, OW]);
  let idx = 0;
  for (let nc = 0; nc < N * C; nc++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        let m = -Infinity;
        for (let a = 0; a < k[0]; a++)
          for (let b = 0; b < k[1]; b++) {
            const h = oh * s[0] - p[0] + a;
            const w = ow * s[1] - p[1] + b;
            if (h >= 0 && h < H && w >= 0 && w < W) m = Math.max(m, x.data[(nc * H + h) * W + w]);
          }
        out.data[idx++] = m;
      }
  return out;
}

/** Mean over each window; the divisor counts padding (countIncludePad, PyTorch's default) or not. */
export function avgPool2d(x: Arr, o: RefPoolOptions): Arr {
  const [N, C] = x.shape;
  const { H, W, k, s, p, OH, OW } = poolGeometry(x, o);
  const includePad = o.countIncludePad ?? true;
  const out = Arr.zeros([N, C, OH, OW]);
  let idx = 0;
  for (let nc = 0; nc < N * C; nc++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        let acc = 0;
        let count = 0;
        const h0 = oh * s[0] - p[0];
        const w0 = ow * s[1] - p[1];
        for (let a = 0; a < k[0]; a++)
          for (let b = 0; b < k[1]; b++) {
            const h = h0 + a;
            const w = w0 + b;
            if (h >= 0 && h < H && w >= 0 && w < W) {
              acc += x.data[(nc * H + h) * W + w];
              count++;
            }
          }
        // With padding counted, the window is clipped to the padded input's extent (as PyTorch).
        const padded = (Math.min(h0 + k[0], H + p[0]) - h0) * (Math.min(w0 + k[1], W + p[1]) - w0);
        out.data[idx++] = acc / (includePad ? padded : count);
      }
  return out;
}
