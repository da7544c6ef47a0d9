// SciPy's order-3 spline interpolation of a 2D plane on the CPU, shared by MedSAM's resize
// (skimage.transform.resize order 3) and TransUNet's zoom (scipy.ndimage.zoom order 3): the
// cubic B-spline coefficients of the samples (spline_filter1d along axis 0, then axis 1: the
// recursive prefilter with pole sqrt(3) - 2 and the 'mirror' boundary of ni_splines.c), evaluated
// at separable source coordinates (rows first into [outH, w], then columns) with the four taps
// floor(x) - 1 .. floor(x) + 2 read under the same mirror extension. The callers map output
// indices to source coordinates (resize: (o + 0.5) f - 0.5 reflected into range; zoom:
// corner-aligned o (n - 1) / (outN - 1)).

/** Index into [0, n) under SciPy's 'mirror' extension (d c b | a b c d | c b a). */
export function mirrorIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  let k = i % period;
  if (k < 0) k += period;
  return k < n ? k : period - k;
}

const POLE = Math.sqrt(3) - 2;

/** SciPy's spline_filter1d(order=3, mode='mirror') of one line, in place. */
function splineFilterLine(c: Float64Array): void {
  const n = c.length;
  if (n === 1) return;
  const z = POLE;
  const gain = (1 - z) * (1 - 1 / z);
  for (let i = 0; i < n; i++) c[i] *= gain;
  // causal initialisation for the mirror boundary (ni_splines.c _init_causal_mirror)
  let zi = z;
  const zn1 = z ** (n - 1);
  let c0 = c[0] + zn1 * c[n - 1];
  for (let i = 1; i < n - 1; i++) {
    c0 += zi * (c[i] + zn1 * c[n - 1 - i]);
    zi *= z;
  }
  c[0] = c0 / (1 - zn1 * zn1);
  for (let i = 1; i < n; i++) c[i] += z * c[i - 1];
  // anticausal initialisation (_init_anticausal_mirror) and pass
  c[n - 1] = ((z * c[n - 2] + c[n - 1]) * z) / (z * z - 1);
  for (let i = n - 2; i >= 0; i--) c[i] = z * (c[i + 1] - c[i]);
}

/** Cubic B-spline weights for offsets -1, 0, 1, 2 from floor(x), t = x - floor(x). */
function cubicWeights(t: number, w: Float64Array): void {
  const t2 = t * t;
  const t3 = t2 * t;
  const u = 1 - t;
  w[0] = (u * u * u) / 6;
  w[1] = (4 - 6 * t2 + 3 * t3) / 6;
  w[2] = (1 + 3 * t + 3 * t2 - 3 * t3) / 6;
  w[3] = t3 / 6;
}

/** The four mirrored tap indices and weights of each source coordinate along an axis of n samples. */
function taps(coords: ArrayLike<number>, n: number): { idx: Int32Array; wt: Float64Array } {
  const idx = new Int32Array(coords.length * 4);
  const wt = new Float64Array(coords.length * 4);
  const tmp = new Float64Array(4);
  for (let o = 0; o < coords.length; o++) {
    const x = coords[o];
    const fl = Math.floor(x);
    cubicWeights(x - fl, tmp);
    for (let k = 0; k < 4; k++) {
      idx[o * 4 + k] = mirrorIndex(fl - 1 + k, n);
      wt[o * 4 + k] = tmp[k];
    }
  }
  return { idx, wt };
}

/**
 * The cubic spline through the h x w plane (row-major) at rows `ys` x columns `xs` (source
 * coordinates within [0, h - 1] and [0, w - 1]): a ys.length x xs.length plane.
 */
export function cubicSplineSample(plane: ArrayLike<number>, h: number, w: number, ys: ArrayLike<number>, xs: ArrayLike<number>): Float64Array {
  if (plane.length !== h * w) throw new Error(`cubicSplineSample: ${plane.length} values do not fill ${h} x ${w}`);
  const img = Float64Array.from(plane);
  if (h > 1) {
    const c = new Float64Array(h);
    for (let x = 0; x < w; x++) {
      for (let y = 0; y < h; y++) c[y] = img[y * w + x];
      splineFilterLine(c);
      for (let y = 0; y < h; y++) img[y * w + x] = c[y];
    }
  }
  if (w > 1) for (let y = 0; y < h; y++) splineFilterLine(img.subarray(y * w, (y + 1) * w));
  const outH = ys.length;
  const outW = xs.length;
  const rows = taps(ys, h);
  const cols = taps(xs, w);
  const mid = new Float64Array(outH * w);
  for (let o = 0; o < outH; o++)
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let k = 0; k < 4; k++) acc += rows.wt[o * 4 + k] * img[rows.idx[o * 4 + k] * w + x];
      mid[o * w + x] = acc;
    }
  const out = new Float64Array(outH * outW);
  for (let y = 0; y < outH; y++)
    for (let o = 0; o < outW; o++) {
      let acc = 0;
      for (let k = 0; k < 4; k++) acc += cols.wt[o * 4 + k] * mid[y * w + cols.idx[o * 4 + k]];
      out[y * outW + o] = acc;
    }
  return out;
}
