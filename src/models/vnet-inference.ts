// V-Net inference on a whole scan (a NIfTI Volume of any size): resample to the model's voxel spacing
// (trilinear, F.interpolate on the GPU), normalise intensities (a CT window scaled to [0, 1], or a
// z-score over the volume), predict overlapping patches (sliding window; each patch's softmax weighted
// by a Gaussian centred on it, sigma = patch / 8, then divided by the summed weights), resample the
// class probabilities back to the scan's grid, argmax, and return uint8 labels in the scan's voxel
// order, ready for io.writeNifti(labels, volume). The preprocessing travels with trained weights in
// the safetensors metadata ('vnet_config', 'vnet_preprocessing'), so a file segments as it was trained.
import '../ops/methods.js';
import { noGrad } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor, tensor } from '../tensor.js';
import { interpolate } from '../ops/interpolate.js';
import { softmax } from '../ops/softmax.js';
import { argmax, mean } from '../ops/reduce.js';
import { clamp } from '../ops/elementwise.js';
import type { Volume } from '../io/nifti.js';
import { VNet, vnetConfig, type VNetConfig, type VNetPreset } from './vnet.js';
import { scope } from '../scope.js';

export type IntensityNormalization = { kind: 'ct-window'; min: number; max: number } | { kind: 'zscore' };

export interface VNetPreprocessing {
  /** voxel size the model works at, in mm, (x, y, z) as NIfTI pixdim */
  spacing: [number, number, number];
  intensity: IntensityNormalization;
  /** sliding-window patch (D, H, W) = (z, y, x) voxels, each a multiple of 16 */
  patch: [number, number, number];
  /** fraction of the patch shared by neighbouring windows, in [0, 1) */
  overlap: number;
}

/**
 * paper: V-Net's prostate MRI setting (1 x 1 x 1.5 mm, 128 x 128 x 64 volumes, z-score);
 * monai: MONAI's spleen CT recipe (1.5 x 1.5 x 2 mm, window [-57, 164] HU, 96^3 patches);
 * tiny: the same CT window at 3.2 x 3.2 x 5 mm with 32 x 48 x 48 patches, for CPU runs (one patch holds
 * the whole bundled spleen crop, 26 x 41 x 41 voxels at that spacing: scripts/vnet-spleen.sh's settings;
 * 1.6 x 1.6 x 2.5 mm and 32 x 64 x 64 before).
 */
export const VNET_PREPROCESSING: Record<VNetPreset, VNetPreprocessing> = {
  paper: { spacing: [1, 1, 1.5], intensity: { kind: 'zscore' }, patch: [64, 128, 128], overlap: 0.5 },
  monai: { spacing: [1.5, 1.5, 2], intensity: { kind: 'ct-window', min: -57, max: 164 }, patch: [96, 96, 96], overlap: 0.5 },
  tiny: { spacing: [3.2, 3.2, 5], intensity: { kind: 'ct-window', min: -57, max: 164 }, patch: [32, 48, 48], overlap: 0.5 },
};

/** safetensors metadata entries recording how weights were trained. */
export function vnetMetadata(config: VNetConfig, pre: VNetPreprocessing): Record<string, string> {
  return { model: 'vnet', vnet_config: JSON.stringify(config), vnet_preprocessing: JSON.stringify(pre) };
}

/** The schema a converted checkpoint matched, as model options (variant and activation). */
const SCHEMA_OPTIONS: Record<string, Partial<VNetConfig>> = {
  vnet_pytorch: { variant: 'vnet.pytorch', act: 'prelu' },
  vnet_pytorch_elu: { variant: 'vnet.pytorch', act: 'elu' },
  vnet_monai: { variant: 'monai', act: 'elu' },
  vnet_monai_prelu: { variant: 'monai', act: 'prelu' },
};

/**
 * Model config and preprocessing for a weights file: what its metadata records (files written by
 * `medseg train`), else the preset's, with the variant and activation of the schema a converted
 * checkpoint matched.
 */
export function vnetSettingsFrom(metadata: Record<string, string>, preset: VNetPreset = 'paper'): { config: VNetConfig; preprocessing: VNetPreprocessing } {
  const schema = SCHEMA_OPTIONS[(metadata.schema ?? '').split('/')[0]] ?? {};
  const config = metadata.vnet_config ? vnetConfig(JSON.parse(metadata.vnet_config) as Partial<VNetConfig>) : vnetConfig({ preset, ...schema });
  const preprocessing = metadata.vnet_preprocessing ? checkPreprocessing(JSON.parse(metadata.vnet_preprocessing) as VNetPreprocessing) : VNET_PREPROCESSING[preset];
  return { config, preprocessing };
}

export function checkPreprocessing(p: VNetPreprocessing): VNetPreprocessing {
  const bad = (why: string) => new Error(`VNet preprocessing: ${why} (got ${JSON.stringify(p)})`);
  if (!Array.isArray(p.spacing) || p.spacing.length !== 3 || p.spacing.some((s) => !(s > 0))) throw bad('spacing must be 3 positive numbers');
  if (!Array.isArray(p.patch) || p.patch.length !== 3 || p.patch.some((s) => !(s > 0) || s % 16)) throw bad('patch must be 3 positive multiples of 16');
  if (!(p.overlap >= 0 && p.overlap < 1)) throw bad('overlap must be in [0, 1)');
  if (p.intensity?.kind === 'ct-window' ? !(p.intensity.max > p.intensity.min) : p.intensity?.kind !== 'zscore') throw bad("intensity must be {kind:'zscore'} or {kind:'ct-window', min < max}");
  return p;
}

/** The scan's grid size (D, H, W) = (nz, ny, nx) at the model spacing. */
export function resampledSize(vol: Pick<Volume, 'dims' | 'spacing'>, spacing: readonly number[]): [number, number, number] {
  const s = [0, 1, 2].map((a) => Math.max(1, Math.round((vol.dims[a] * vol.spacing[a]) / spacing[a])));
  return [s[2], s[1], s[0]];
}

/** [1, 1, D, H, W] -> normalised intensities (ct window to [0, 1], or zero mean unit variance). */
export function normalizeIntensity(x: Tensor, n: IntensityNormalization): Tensor {
  return scope(() =>
    noGrad(() => {
      if (n.kind === 'ct-window') return clamp(x, n.min, n.max).sub(n.min).mul(1 / (n.max - n.min));
      const d = x.sub(mean(x));
      return d.div(mean(d.mul(d)).add(1e-8).sqrt());
    }),
  );
}

/** Window starts along one axis: step patch * (1 - overlap), the last window flush with the end. */
export function windowStarts(size: number, patch: number, overlap: number): number[] {
  if (size <= patch) return [0];
  const step = Math.max(1, Math.round(patch * (1 - overlap)));
  const starts: number[] = [];
  for (let s = 0; s + patch < size; s += step) starts.push(s);
  starts.push(size - patch);
  return starts;
}

/** Gaussian importance map over a patch, sigma = size / 8 per axis, max 1, floored at 1e-3. */
export function gaussianWeights(patch: readonly number[]): Float32Array {
  const [pd, ph, pw] = patch;
  const g = (n: number) => Array.from({ length: n }, (_, i) => Math.exp(-(((i + 0.5 - n / 2) / (n / 8)) ** 2) / 2));
  const gd = g(pd);
  const gh = g(ph);
  const gw = g(pw);
  const out = new Float32Array(pd * ph * pw);
  for (let d = 0; d < pd; d++) for (let h = 0; h < ph; h++) for (let w = 0; w < pw; w++) out[(d * ph + h) * pw + w] = Math.max(1e-3, gd[d] * gh[h] * gw[w]);
  return out;
}

export interface SegmentProgress {
  stage: 'preprocess' | 'windows' | 'postprocess';
  done: number;
  total: number;
}

export interface SegmentResult {
  /** uint8 labels in the volume's voxel order (x fastest), for io.writeNifti(labels, volume) */
  labels: Uint8Array;
  /** seconds per stage: preprocess (upload, resample, normalise), windows, postprocess (resample back, argmax, read) */
  times: { preprocess: number; windows: number; postprocess: number; total: number };
  /** grid the model saw (D, H, W) and the number of windows */
  grid: [number, number, number];
  windows: number;
}

/**
 * Segments a scan with a V-Net (in eval mode for the call). Patches smaller than the resampled scan
 * are padded with the scan's minimum; classes = the model's outChannels. An aborted `signal` stops it
 * between windows.
 */
export interface SegmentOptions {
  onProgress?: (p: SegmentProgress) => void;
  /** checked before each window: once aborted, the call stops there and rejects with the signal's reason (GPU work finished, nothing half done) */
  signal?: AbortSignal;
}

export async function segmentVolume(net: VNet, vol: Volume, pre: VNetPreprocessing, options: SegmentOptions = {}): Promise<SegmentResult> {
  checkPreprocessing(pre);
  const rt = runtime();
  const wasTraining = net.training;
  net.eval();
  const t0 = performance.now();
  const [nx, ny, nz] = vol.dims;
  const C = net.config.outChannels;
  // gradients are off inside each synchronous scope (noGrad), not across the awaits: a training
  // step that runs while this waits for a window must still record its graph
  try {
    {
      // ---- preprocess
      options.onProgress?.({ stage: 'preprocess', done: 0, total: 1 });
      const grid = resampledSize(vol, pre.spacing);
      const x = scope(() => noGrad(() => normalizeIntensity(interpolate(tensor(vol.data, [1, 1, nz, ny, nx]), { size: grid, mode: 'trilinear' }), pre.intensity)));
      const xs = await x.read();
      x.dispose();
      let lo = Infinity;
      for (const v of xs) lo = Math.min(lo, v);
      const [D, H, W] = grid;
      const P = pre.patch;
      // the padded grid holds at least one patch
      const G = [Math.max(D, P[0]), Math.max(H, P[1]), Math.max(W, P[2])];
      const t1 = performance.now();
      options.onProgress?.({ stage: 'preprocess', done: 1, total: 1 });

      // ---- sliding window, accumulated on the CPU (one patch's probabilities at a time)
      const acc = new Float32Array(C * D * H * W);
      const wsum = new Float32Array(D * H * W);
      const gw = gaussianWeights(P);
      const starts = [0, 1, 2].map((a) => windowStarts(G[a], P[a], pre.overlap));
      const total = starts[0].length * starts[1].length * starts[2].length;
      const patch = new Float32Array(P[0] * P[1] * P[2]);
      let done = 0;
      options.onProgress?.({ stage: 'windows', done, total });
      for (const sd of starts[0])
        for (const sh of starts[1])
          for (const sw of starts[2]) {
            options.signal?.throwIfAborted();
            for (let d = 0; d < P[0]; d++)
              for (let h = 0; h < P[1]; h++)
                for (let w = 0; w < P[2]; w++) {
                  const zd = sd + d;
                  const yh = sh + h;
                  const xw = sw + w;
                  patch[(d * P[1] + h) * P[2] + w] = zd < D && yh < H && xw < W ? xs[(zd * H + yh) * W + xw] : lo;
                }
            const prob = scope(() => noGrad(() => softmax(net.forward(tensor(patch, [1, 1, ...P])), 1)));
            const pv = await prob.read();
            prob.dispose();
            const pvol = P[0] * P[1] * P[2];
            for (let d = 0; d < P[0] && sd + d < D; d++)
              for (let h = 0; h < P[1] && sh + h < H; h++)
                for (let w = 0; w < P[2] && sw + w < W; w++) {
                  const pi = (d * P[1] + h) * P[2] + w;
                  const gi = ((sd + d) * H + sh + h) * W + sw + w;
                  const wt = gw[pi];
                  wsum[gi] += wt;
                  for (let c = 0; c < C; c++) acc[c * D * H * W + gi] += wt * pv[c * pvol + pi];
                }
            options.onProgress?.({ stage: 'windows', done: ++done, total });
          }
      for (let c = 0; c < C; c++) for (let i = 0; i < wsum.length; i++) acc[c * wsum.length + i] /= wsum[i];
      const t2 = performance.now();

      // ---- back to the scan's grid, argmax
      options.onProgress?.({ stage: 'postprocess', done: 0, total: 1 });
      const am = scope(() => noGrad(() => argmax(interpolate(tensor(acc, [1, C, D, H, W]), { size: [nz, ny, nx], mode: 'trilinear' }), 1)));
      const lab = await am.read();
      am.dispose();
      const labels = Uint8Array.from(lab);
      await rt.sync();
      const t3 = performance.now();
      options.onProgress?.({ stage: 'postprocess', done: 1, total: 1 });
      const s = (ms: number) => ms / 1000;
      return { labels, times: { preprocess: s(t1 - t0), windows: s(t2 - t1), postprocess: s(t3 - t2), total: s(t3 - t0) }, grid, windows: total };
    }
  } finally {
    net.train(wasTraining);
  }
}
