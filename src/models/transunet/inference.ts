// TransUNet's slice-wise inference (test.py's test_single_volume with the Synapse preprocessing of
// datasets/README.md; docs/models/transunet.md section 1): each axial slice clipped to the CT window
// (default [-125, 275] HU) and scaled to [0, 1], zoomed to imgSize x imgSize with
// scipy.ndimage.zoom(order=3) (cubic B-spline, mirror-boundary prefilter, corner-aligned
// coordinates src = dst (in - 1) / (out - 1)), slices batched through the network, argmax over
// the classes, and the label map zoomed back with zoom(order=0) (the same coordinates, rounded).
// A volume is x fastest with slices along z (NIfTI's voxel order); a slice's rows are its y.
import { noGrad } from '../../autograd.js';
import { scope } from '../../scope.js';
import { tensor } from '../../tensor.js';
import type { Volume } from '../../io/nifti.js';
import type { TransUNet } from './transunet.js';

/** TransUNet's training CT window in HU. */
export const TRANSUNET_CT_WINDOW: readonly [number, number] = [-125, 275];

/** Index into [0, n) under SciPy's 'mirror' extension (d c b | a b c d | c b a). */
function mirror(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  let k = i % period;
  if (k < 0) k += period;
  return k < n ? k : period - k;
}

const POLE = Math.sqrt(3) - 2;

/** spline_filter1d(order=3, mode='mirror') of one line, in place (ni_splines.c). */
function splineFilterLine(c: Float64Array): void {
  const n = c.length;
  if (n === 1) return;
  const z = POLE;
  const gain = (1 - z) * (1 - 1 / z);
  for (let i = 0; i < n; i++) c[i] *= gain;
  let zi = z;
  const zn1 = z ** (n - 1);
  let c0 = c[0] + zn1 * c[n - 1];
  for (let i = 1; i < n - 1; i++) {
    c0 += zi * (c[i] + zn1 * c[n - 1 - i]);
    zi *= z;
  }
  c[0] = c0 / (1 - zn1 * zn1);
  for (let i = 1; i < n; i++) c[i] += z * c[i - 1];
  c[n - 1] = ((z * c[n - 2] + c[n - 1]) * z) / (z * z - 1);
  for (let i = n - 2; i >= 0; i--) c[i] = z * (c[i + 1] - c[i]);
}

/** zoom's corner-aligned source coordinate of output index o (grid_mode=False). */
const source = (o: number, n: number, outN: number) => (outN > 1 ? (o * (n - 1)) / (outN - 1) : 0);

/**
 * scipy.ndimage.zoom(plane, (outH / h, outW / w), order=3) of one h x w plane (row-major): the cubic
 * B-spline through the samples (prefilter and taps with the mirror extension) at corner-aligned
 * coordinates. Every sample point lies inside the input, so mode='constant' never reads its cval.
 */
export function zoomCubic(plane: ArrayLike<number>, h: number, w: number, outH: number, outW: number): Float64Array {
  const img = Float64Array.from(plane);
  if (img.length !== h * w) throw new Error(`zoomCubic: ${img.length} values do not fill ${h} x ${w}`);
  if (h > 1) {
    const c = new Float64Array(h);
    for (let x = 0; x < w; x++) {
      for (let y = 0; y < h; y++) c[y] = img[y * w + x];
      splineFilterLine(c);
      for (let y = 0; y < h; y++) img[y * w + x] = c[y];
    }
  }
  if (w > 1) for (let y = 0; y < h; y++) splineFilterLine(img.subarray(y * w, (y + 1) * w));
  const taps = (n: number, outN: number) => {
    const idx = new Int32Array(outN * 4);
    const wt = new Float64Array(outN * 4);
    for (let o = 0; o < outN; o++) {
      const x = source(o, n, outN);
      const fl = Math.floor(x);
      const t = x - fl;
      const u = 1 - t;
      const ws = [(u * u * u) / 6, (4 - 6 * t * t + 3 * t * t * t) / 6, (1 + 3 * t + 3 * t * t - 3 * t * t * t) / 6, (t * t * t) / 6];
      for (let k = 0; k < 4; k++) {
        idx[o * 4 + k] = mirror(fl - 1 + k, n);
        wt[o * 4 + k] = ws[k];
      }
    }
    return { idx, wt };
  };
  const rows = taps(h, outH);
  const cols = taps(w, outW);
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

/** scipy.ndimage.zoom(labels, ..., order=0): the nearest sample at corner-aligned coordinates, halves rounded up. */
export function zoomNearest(labels: ArrayLike<number>, h: number, w: number, outH: number, outW: number): Uint8Array {
  if (labels.length !== h * w) throw new Error(`zoomNearest: ${labels.length} values do not fill ${h} x ${w}`);
  const ys = Array.from({ length: outH }, (_, o) => Math.min(h - 1, Math.floor(source(o, h, outH) + 0.5)));
  const xs = Array.from({ length: outW }, (_, o) => Math.min(w - 1, Math.floor(source(o, w, outW) + 0.5)));
  const out = new Uint8Array(outH * outW);
  for (let y = 0; y < outH; y++) for (let x = 0; x < outW; x++) out[y * outW + x] = labels[ys[y] * w + xs[x]];
  return out;
}

/** One slice as the network sees it: the CT window scaled to [0, 1], zoomed (order 3) to size x size. */
export function transunetPreprocess(slice: ArrayLike<number>, h: number, w: number, size: number, window: readonly [number, number] = TRANSUNET_CT_WINDOW): Float32Array {
  const [lo, hi] = window;
  if (!(hi > lo)) throw new Error(`TransUNet preprocessing: the window [${lo}, ${hi}] is empty`);
  const scaled = new Float64Array(h * w);
  for (let i = 0; i < h * w; i++) scaled[i] = (Math.min(hi, Math.max(lo, slice[i])) - lo) / (hi - lo);
  return Float32Array.from(h === size && w === size ? scaled : zoomCubic(scaled, h, w, size, size));
}

export interface TransUNetSegmentOptions {
  /** CT window in HU (default [-125, 275]) */
  window?: readonly [number, number];
  /** slices per forward pass (default 4) */
  batchSize?: number;
  onProgress?: (p: { done: number; total: number }) => void;
  /** checked before each batch: once aborted, the call rejects with the signal's reason */
  signal?: AbortSignal;
}

export interface TransUNetSegmentResult {
  /** uint8 labels in the input's voxel order (x fastest, slices along z) */
  labels: Uint8Array;
  slices: number;
  seconds: number;
}

/**
 * Segments `depth` slices of `height` x `width` values (x fastest, one slice after the other: a
 * NIfTI volume's data, or a 2D image with depth 1) with a TransUNet (in eval mode for the call).
 */
export async function segmentSlices(net: TransUNet, data: ArrayLike<number>, [width, height, depth]: readonly [number, number, number], options: TransUNetSegmentOptions = {}): Promise<TransUNetSegmentResult> {
  const t0 = performance.now();
  const S = net.imgSize;
  const plane = width * height;
  if (data.length !== plane * depth) throw new Error(`TransUNet segment: ${data.length} values do not fill ${width} x ${height} x ${depth}`);
  const batch = options.batchSize ?? 4;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`TransUNet segment: batchSize must be a positive integer, got ${batch}`);
  const wasTraining = net.training;
  net.eval();
  const labels = new Uint8Array(plane * depth);
  try {
    options.onProgress?.({ done: 0, total: depth });
    for (let z0 = 0; z0 < depth; z0 += batch) {
      options.signal?.throwIfAborted();
      const n = Math.min(batch, depth - z0);
      const x = new Float32Array(n * S * S);
      for (let b = 0; b < n; b++) {
        const off = (z0 + b) * plane;
        const slice = Array.prototype.slice.call(data, off, off + plane) as number[];
        x.set(transunetPreprocess(slice, height, width, S, options.window), b * S * S);
      }
      const pred = scope(() => noGrad(() => net.forward(tensor(x, [n, 1, S, S])).argmax(1)));
      const p = await pred.read();
      pred.dispose();
      for (let b = 0; b < n; b++) {
        const sub = p.subarray(b * S * S, (b + 1) * S * S);
        labels.set(height === S && width === S ? Uint8Array.from(sub) : zoomNearest(sub, S, S, height, width), (z0 + b) * plane);
      }
      options.onProgress?.({ done: z0 + n, total: depth });
    }
  } finally {
    net.train(wasTraining);
  }
  return { labels, slices: depth, seconds: (performance.now() - t0) / 1000 };
}

/** segmentSlices over a NIfTI volume's axial slices; write the labels with io.writeNifti(labels, volume). */
export function segmentVolumeSlices(net: TransUNet, vol: Volume, options: TransUNetSegmentOptions = {}): Promise<TransUNetSegmentResult> {
  return segmentSlices(net, vol.data, vol.dims, options);
}
