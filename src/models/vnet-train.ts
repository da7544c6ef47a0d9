// V-Net training: cases (scan + label) resampled to the model spacing (trilinear for the scan,
// nearest for the label, F.interpolate on the GPU) and normalised as at inference; random patches
// with foreground-balanced centres (half of the patches centred on a random foreground voxel) and
// random flips along each axis; V-Net's Dice loss on the foreground probability,
// 1 - 2 sum(p g) / (sum(p^2) + sum(g^2)) over the batch, optimised with Adam (vnet.pytorch's
// weight decay 1e-8). sampleBatch adds the paper's random smooth deformation: each patch is cut with
// a margin, then warped on the GPU by a random B-spline field (trilinear scan, nearest label). The
// window inside the margin is placed as segment's windows are, flush with the volume's faces too (the
// margin is padded where it leaves the volume): cut inside the volume, it kept every window 3 sigma
// away from the faces, and the outer voxels, never trained at a window edge, were segmented badly.
import { noGrad } from '../autograd.js';
import { Tensor, rng, tensor } from '../tensor.js';
import { interpolate } from '../ops/interpolate.js';
import { softmax } from '../ops/softmax.js';
import { diceLoss } from '../ops/loss.js';
import { Adam } from '../optim/adam.js';
import { warp } from '../ops/warp.js';
import { reshape } from '../ops/shape.js';
import { randomDeformation, type DeformationOptions } from './deformation.js';
import type { Volume } from '../io/nifti.js';
import type { VNet } from './vnet.js';
import { normalizeIntensity, resampledSize, type VNetPreprocessing } from './vnet-inference.js';
import { scope } from '../scope.js';

/** A scan and its label on the model grid, on the CPU: [D, H, W] row-major. */
export interface TrainingCase {
  image: Float32Array;
  label: Uint8Array;
  size: [number, number, number];
  /** flat indices of foreground voxels (label > 0) */
  foreground: Uint32Array;
  /** the value patches are padded with (the normalised scan's minimum) */
  padValue: number;
}

/** Resamples and normalises one (scan, label) pair to the model grid. */
export async function prepareCase(image: Volume, label: Volume, pre: VNetPreprocessing): Promise<TrainingCase> {
  if (image.dims.join() !== label.dims.join()) throw new Error(`VNet training: label dims ${label.dims.join('x')} differ from the scan's ${image.dims.join('x')}`);
  const [nx, ny, nz] = image.dims;
  const size = resampledSize(image, pre.spacing);
  // no gradients inside the synchronous scope only (a global switch across the await would leave
  // them off for whatever else runs meanwhile, e.g. a training step)
  {
    const [x, lres] = scope(() =>
      noGrad(() => [
        normalizeIntensity(interpolate(tensor(image.data, [1, 1, nz, ny, nx]), { size, mode: 'trilinear' }), pre.intensity),
        interpolate(tensor(label.data, [1, 1, nz, ny, nx]), { size, mode: 'nearest' }),
      ]),
    );
    const [img, lab] = await Promise.all([x.read(), lres.read()]);
    x.dispose();
    lres.dispose();
    const l8 = Uint8Array.from(lab, (v) => Math.round(v));
    const fg: number[] = [];
    for (let i = 0; i < l8.length; i++) if (l8[i] > 0) fg.push(i);
    let lo = Infinity;
    for (const v of img) lo = Math.min(lo, v);
    return { image: img, label: l8, size, foreground: Uint32Array.from(fg), padValue: lo };
  }
}

export interface PatchOptions {
  /** probability that a patch is centred on a foreground voxel (default 0.5) */
  foregroundProbability?: number;
  /** random flips along each axis (default true) */
  flip?: boolean;
  /**
   * voxels cut around the patch on every side (default 0), for a deformation to draw from: the window
   * inside the margin is placed as if there were none (inside the volume when it fits, as segment's
   * windows are, flush with the volume's faces too) and the margin is padded where it leaves the volume
   */
  margin?: number;
}

/** One random patch [P] of a case (P includes options.margin on each side): image values and labels (0/1 per class index). */
export function samplePatch(c: TrainingCase, patch: readonly number[], random: () => number, o: PatchOptions = {}): { image: Float32Array; label: Float32Array } {
  const [D, H, W] = c.size;
  const [pd, ph, pw] = patch;
  const m = o.margin ?? 0;
  // the window the margin surrounds
  const inner = patch.map((p) => p - 2 * m);
  if (inner.some((p) => p < 1)) throw new Error(`samplePatch: margin ${m} leaves nothing of patch ${patch.join('x')}`);
  const pick = (n: number) => Math.floor(random() * n);
  let start: number[];
  if (c.foreground.length && random() < (o.foregroundProbability ?? 0.5)) {
    const f = c.foreground[pick(c.foreground.length)];
    const centre = [Math.floor(f / (H * W)), Math.floor(f / W) % H, f % W];
    start = [0, 1, 2].map((a) => {
      const n = c.size[a];
      const p = inner[a];
      // the centre voxel anywhere in the middle half of the window, the window inside the volume when it fits
      const s = centre[a] - Math.floor(p / 4) - pick(Math.max(1, Math.floor(p / 2)));
      return (n >= p ? Math.min(Math.max(0, s), n - p) : Math.min(0, Math.max(s, n - p))) - m;
    });
  } else start = [0, 1, 2].map((a) => (c.size[a] >= inner[a] ? pick(c.size[a] - inner[a] + 1) : -pick(inner[a] - c.size[a] + 1)) - m);
  const flip = [0, 1, 2].map(() => (o.flip ?? true) && random() < 0.5);
  const image = new Float32Array(pd * ph * pw);
  const label = new Float32Array(pd * ph * pw);
  for (let d = 0; d < pd; d++)
    for (let h = 0; h < ph; h++)
      for (let w = 0; w < pw; w++) {
        const z = start[0] + (flip[0] ? pd - 1 - d : d);
        const y = start[1] + (flip[1] ? ph - 1 - h : h);
        const x = start[2] + (flip[2] ? pw - 1 - w : w);
        const o2 = (d * ph + h) * pw + w;
        if (z < 0 || z >= D || y < 0 || y >= H || x < 0 || x >= W) {
          image[o2] = c.padValue;
          continue;
        }
        const i = (z * H + y) * W + x;
        image[o2] = c.image[i];
        label[o2] = c.label[i];
      }
  return { image, label };
}

export interface BatchOptions extends PatchOptions {
  /** the random smooth deformation (default: cells 2, sigma 2 voxels); null turns it off */
  deformation?: DeformationOptions | null;
}

/**
 * A training batch on the GPU: images [N, 1, D, H, W] and labels [N, D, H, W] of random patches
 * (foreground-balanced, flipped, and deformed unless options.deformation is null).
 */
export function sampleBatch(cases: readonly TrainingCase[], patch: readonly [number, number, number], batch: number, random: () => number, options: BatchOptions = {}): { images: Tensor; labels: Tensor } {
  const pvol = patch[0] * patch[1] * patch[2];
  const def = options.deformation === null ? null : { cells: 2, sigma: 2, ...options.deformation };
  // control displacements are clipped at 3 sigma, and the field never exceeds them
  const m = def ? Math.ceil(3 * def.sigma) : 0;
  const big = patch.map((n) => n + 2 * m) as [number, number, number];
  const bvol = big[0] * big[1] * big[2];
  const xs = new Float32Array(batch * bvol);
  const ys = new Float32Array(batch * bvol);
  const fields = def ? new Float32Array(batch * 3 * pvol) : null;
  for (let b = 0; b < batch; b++) {
    // the window inside the margin is placed as segment's windows are (flush with the volume's faces
    // too), so the volume's outer m voxels are trained at window edges as they are segmented there
    const p = samplePatch(cases[Math.floor(random() * cases.length)], big, random, { ...options, margin: m });
    xs.set(p.image, b * bvol);
    ys.set(p.label, b * bvol);
    if (fields && def) {
      // output voxel v reads the margined patch at v + m + displacement
      const f = randomDeformation(patch, random, def);
      for (let i = 0; i < f.length; i++) fields[b * 3 * pvol + i] = f[i] + m;
    }
  }
  if (!fields) return { images: tensor(xs, [batch, 1, ...patch]), labels: tensor(ys, [batch, ...patch]) };
  return scope(() =>
    noGrad(() => {
      const f = tensor(fields, [batch, 3, ...patch]);
      const images = warp(tensor(xs, [batch, 1, ...big]), f, { mode: 'trilinear' });
      const labels = reshape(warp(tensor(ys, [batch, 1, ...big]), f, { mode: 'nearest' }), [batch, ...patch]);
      return { images, labels };
    }),
  );
}

export interface StepResult {
  /** V-Net Dice loss of the batch (1 - soft Dice of the foreground) */
  loss: number;
  /** hard Dice of the foreground (argmax) on the batch */
  dice: number;
}

/** Adam on V-Net's Dice loss. */
export class VNetTrainer {
  readonly optimizer: Adam;
  steps = 0;
  constructor(
    readonly net: VNet,
    options: { lr?: number; weightDecay?: number } = {},
  ) {
    this.optimizer = new Adam(net.parameters(), { lr: options.lr ?? 1e-3, weightDecay: options.weightDecay ?? 1e-8 });
  }

  /** One step on images [N, 1, D, H, W] and labels [N, D, H, W] (class indices as floats). */
  async step(images: Tensor, labels: Tensor): Promise<StepResult> {
    this.net.train();
    const { probs, loss } = scope(() => {
      const probs = softmax(this.net.forward(images), 1);
      const loss = diceLoss(probs, labels, { squaredPred: true, includeBackground: false, batch: true });
      this.optimizer.zeroGrad();
      loss.backward();
      this.optimizer.step();
      return { probs, loss };
    });
    const value = await loss.item();
    loss.dispose();
    // hard Dice from the probabilities (foreground where p1 > 0.5)
    const N = probs.shape[0];
    const [p, g] = await Promise.all([probs.read(), labels.read()]);
    probs.dispose();
    const n = g.length;
    const S = n / N;
    let inter = 0;
    let ps = 0;
    let gs = 0;
    for (let b = 0; b < N; b++)
      for (let i = 0; i < S; i++) {
        const fg = p[(b * 2 + 1) * S + i] > 0.5 ? 1 : 0;
        const gi = g[b * S + i] > 0 ? 1 : 0;
        inter += fg * gi;
        ps += fg;
        gs += gi;
      }
    this.steps++;
    return { loss: value, dice: ps + gs === 0 ? 1 : (2 * inter) / (ps + gs) };
  }
}

/** A seeded uniform [0, 1) generator for patch sampling. */
export function patchRandom(seed: number): () => number {
  return rng(seed);
}
