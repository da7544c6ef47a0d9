// MedSAM's image pre-processing (MedSAM_Inference.py; docs/models/medsam.md section 6), on the
// CPU: gray to three channels, skimage.transform.resize(img, (S, S), order=3, preserve_range=True,
// anti_aliasing=True) (mode 'reflect', i.e. SciPy's 'mirror'), truncation to uint8, min-max to
// [0, 1], channels first. The resize is SciPy's algorithm: per axis with factor f = in / out > 1 a
// Gaussian blur of sigma (f - 1) / 2 (radius int(4 sigma + 0.5), weights summing to 1, mirror
// boundary), then the cubic B-spline through the samples (recursive prefilter with pole sqrt(3) - 2,
// mirror boundary) evaluated at src = (dst + 0.5) f - 0.5, clipped to the input's range. The channel
// axis is left alone: SciPy's spline along it, evaluated at the sample points, returns the samples.

import { cubicSplineSample, mirrorIndex } from '../cubic-spline.js';

/** An image as row-major pixels, `channels` interleaved values per pixel (gray 1 or RGB 3), 0..255. */
export interface ImageInput {
  data: ArrayLike<number>;
  width: number;
  height: number;
  channels: 1 | 3;
}

/** gaussian_filter1d(x, sigma, mode='mirror', truncate=4) over lines of `n` values at `stride`. */
function gaussian1d(src: Float64Array, n: number, count: number, lineStart: (l: number) => number, stride: number, sigma: number): void {
  const r = Math.trunc(4 * sigma + 0.5);
  const w = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let k = -r; k <= r; k++) sum += (w[k + r] = Math.exp((-0.5 / (sigma * sigma)) * k * k));
  for (let k = 0; k < w.length; k++) w[k] /= sum;
  const line = new Float64Array(n);
  for (let l = 0; l < count; l++) {
    const o = lineStart(l);
    for (let i = 0; i < n; i++) line[i] = src[o + i * stride];
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let k = -r; k <= r; k++) acc += w[k + r] * line[mirrorIndex(i + k, n)];
      src[o + i * stride] = acc;
    }
  }
}

/**
 * skimage.transform.resize(plane, (outH, outW), order=3, mode='reflect', anti_aliasing=True,
 * preserve_range=True, clip=True) of one H x W plane (float64 values).
 */
export function resizeCubic(plane: Float64Array, h: number, w: number, outH: number, outW: number): Float64Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of plane) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const img = Float64Array.from(plane);
  const fh = h / outH;
  const fw = w / outW;
  // anti-aliasing blur along each axis that shrinks (rows: axis 0, then columns: axis 1)
  if (fh > 1) gaussian1d(img, h, w, (l) => l, w, (fh - 1) / 2);
  if (fw > 1) gaussian1d(img, w, h, (l) => l * w, 1, (fw - 1) / 2);
  // the cubic spline at src = (dst + 0.5) f - 0.5 reflected into range, clipped to the input's range
  const coords = (n: number, outN: number, f: number) => Float64Array.from({ length: outN }, (_, o) => mirrorCoord((o + 0.5) * f - 0.5, n));
  const out = cubicSplineSample(img, h, w, coords(h, outH, fh), coords(w, outW, fw));
  for (let i = 0; i < out.length; i++) out[i] = Math.min(hi, Math.max(lo, out[i]));
  return out;
}

/** SciPy's map_coordinate for 'mirror': a coordinate outside [0, n - 1] reflected back. */
function mirrorCoord(x: number, n: number): number {
  if (n <= 1) return 0;
  const sz2 = 2 * n - 2;
  if (x < 0) {
    x = sz2 * Math.trunc(-x / sz2) + x;
    return x <= 1 - n ? x + sz2 : -x;
  }
  if (x > n - 1) {
    x -= sz2 * Math.trunc(x / sz2);
    return x >= n ? sz2 - x : x;
  }
  return x;
}

/**
 * MedSAM's input: the image resized to S x S per channel (gray repeated to three channels),
 * truncated to uint8, min-max normalised over the whole array: [3, S, S] float32 in [0, 1].
 */
export function medsamPreprocess(image: ImageInput, size: number): Float32Array {
  const { width: w, height: h, channels: ch, data } = image;
  if (data.length !== w * h * ch) throw new Error(`MedSAM preprocessing: ${data.length} values do not fill ${w} x ${h} x ${ch}`);
  const planes: Uint8Array[] = [];
  for (let c = 0; c < ch; c++) {
    const p = new Float64Array(w * h);
    for (let i = 0; i < w * h; i++) p[i] = data[i * ch + c];
    const r = resizeCubic(p, h, w, size, size);
    planes.push(Uint8Array.from(r, (v) => Math.trunc(v))); // astype(np.uint8) of values in [0, 255]
  }
  let lo = 255;
  let hi = 0;
  for (const p of planes) for (const v of p) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  const range = Math.max(hi - lo, 1e-8);
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) {
    const p = planes[ch === 1 ? 0 : c];
    for (let i = 0; i < size * size; i++) out[c * size * size + i] = (p[i] - lo) / range;
  }
  return out;
}
