// TransUNet's slice-wise inference (test.py's test_single_volume with the Synapse preprocessing of
// datasets/README.md; docs/models/transunet.md section 1): each axial slice clipped to the CT window
// (default [-125, 275] HU) and scaled to [0, 1], zoomed to imgSize x imgSize with
// scipy.ndimage.zoom(order=3) (cubic B-spline, mirror-boundary prefilter, corner-aligned
// coordinates src = dst (in - 1) / (out - 1)), slices batched through the network, argmax over
// the classes, and the label map zoomed back with zoom(order=0) (the same coordinates, rounded).
// A volume is x fastest with slices along z (NIfTI's voxel order); a slice's rows are its y, so a
// slice is image[z] of the [Z, H, W] array SimpleITK's GetArrayFromImage gives (H = y, W = x), which
// is how test.py treats its .h5 volumes (it writes its predictions back with sitk.GetImageFromArray).
// TransUNet never published the script that made its .npz / .h5 from the Synapse NIfTIs. A reader
// that transposes the slice (rows = x) sees a reflection of it, which RandomGenerator's rot90 + flip
// also shows the network in training; a transpose with one axis reversed (mmsegmentation's Synapse
// converter) is a 90-degree rotation, which training never shows.
import { noGrad } from '../../autograd.js';
import { scope } from '../../scope.js';
import { tensor } from '../../tensor.js';
import type { Volume } from '../../io/nifti.js';
import type { TransUNet } from './transunet.js';
import { cubicSplineSample } from '../cubic-spline.js';

/** TransUNet's training CT window in HU. */
export const TRANSUNET_CT_WINDOW: readonly [number, number] = [-125, 275];

/** zoom's corner-aligned source coordinate of output index o (grid_mode=False). */
const source = (o: number, n: number, outN: number) => (outN > 1 ? (o * (n - 1)) / (outN - 1) : 0);

/**
 * scipy.ndimage.zoom(plane, (outH / h, outW / w), order=3) of one h x w plane (row-major): the cubic
 * B-spline through the samples (prefilter and taps with the mirror extension) at corner-aligned
 * coordinates. Every sample point lies inside the input, so mode='constant' never reads its cval.
 */
export function zoomCubic(plane: ArrayLike<number>, h: number, w: number, outH: number, outW: number): Float64Array {
  if (plane.length !== h * w) throw new Error(`zoomCubic: ${plane.length} values do not fill ${h} x ${w}`);
  const coords = (n: number, outN: number) => Float64Array.from({ length: outN }, (_, o) => source(o, n, outN));
  return cubicSplineSample(plane, h, w, coords(h, outH), coords(w, outW));
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

/** Values clipped to the window [lo, hi] and scaled to [0, 1] (the Synapse normalisation; CT in HU). */
export function transunetWindow(values: ArrayLike<number>, window: readonly [number, number] = TRANSUNET_CT_WINDOW): Float64Array {
  const [lo, hi] = window;
  if (!(hi > lo)) throw new Error(`TransUNet preprocessing: the window [${lo}, ${hi}] is empty`);
  const scaled = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) scaled[i] = (Math.min(hi, Math.max(lo, values[i])) - lo) / (hi - lo);
  return scaled;
}

/** One slice as the network sees it: the CT window scaled to [0, 1], zoomed (order 3) to size x size. */
export function transunetPreprocess(slice: ArrayLike<number>, h: number, w: number, size: number, window: readonly [number, number] = TRANSUNET_CT_WINDOW): Float32Array {
  if (slice.length !== h * w) throw new Error(`TransUNet preprocessing: ${slice.length} values do not fill ${h} x ${w}`);
  const scaled = transunetWindow(slice, window);
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
