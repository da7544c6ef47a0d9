// V-Net training: patch sampling (foreground-balanced centres, flips, padding of small volumes),
// a few Adam steps on V-Net's Dice loss reduce the loss on a fixed patch, and `medseg train` on the
// real spleen crop writes safetensors whose metadata records config, preprocessing and step count,
// from which --resume continues.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { models, weights, tensor, manualSeed } from '../../src/index.js';
import { buildProgram } from '../../src/cli/main.js';
import { bestPath } from '../../src/cli/train.js';
import { ready } from '../helpers.js';
import { BASE, disposeNet } from './vnet-helpers.js';

beforeAll(ready);

const DATA = new URL('../../data/', import.meta.url);

/** A case with a bright ball of foreground in a noisy background, [D, H, W]. */
function ballCase(size: [number, number, number], centre: number[], r: number): models.TrainingCase {
  const [D, H, W] = size;
  const image = new Float32Array(D * H * W);
  const label = new Uint8Array(D * H * W);
  let s = 12345;
  const noise = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.4;
  const fg: number[] = [];
  for (let d = 0; d < D; d++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++) {
        const i = (d * H + h) * W + w;
        const inside = (d - centre[0]) ** 2 + (h - centre[1]) ** 2 + (w - centre[2]) ** 2 <= r * r;
        label[i] = inside ? 1 : 0;
        image[i] = (inside ? 1 : 0) + noise();
        if (inside) fg.push(i);
      }
  return { image, label, size, foreground: Uint32Array.from(fg), padValue: -1 };
}

describe('samplePatch', () => {
  it('foreground probability 1 always catches foreground; 0 samples anywhere; patch stays inside', () => {
    const c = ballCase([40, 40, 40], [30, 8, 33], 3);
    const rnd = models.patchRandom(3);
    for (let i = 0; i < 20; i++) {
      const p = models.samplePatch(c, [16, 16, 16], rnd, { foregroundProbability: 1 });
      expect(p.label.some((v) => v > 0)).toBe(true);
      expect(p.image.every((v) => v > -1)).toBe(true); // never padded: the volume is larger than the patch
    }
    let withFg = 0;
    for (let i = 0; i < 40; i++) if (models.samplePatch(c, [16, 16, 16], rnd, { foregroundProbability: 0 }).label.some((v) => v > 0)) withFg++;
    expect(withFg).toBeLessThan(40);
  });

  it('flips keep image and label aligned; volumes smaller than the patch are padded', () => {
    const c = ballCase([8, 20, 20], [4, 10, 10], 3);
    const rnd = models.patchRandom(5);
    for (let i = 0; i < 10; i++) {
      const p = models.samplePatch(c, [16, 16, 16], rnd);
      let pads = 0;
      for (let k = 0; k < p.image.length; k++) {
        if (p.image[k] === -1) pads++;
        else expect(p.label[k]).toBe(p.image[k] > 0.5 ? 1 : 0);
      }
      expect(pads).toBeGreaterThanOrEqual(16 * 16 * 8);
    }
  });
});

/** A case whose image value is the voxel's z (D index), padded with `pad`; label: the upper half in z. */
function rampCase(size: [number, number, number], pad: number): models.TrainingCase {
  const [D, H, W] = size;
  const image = new Float32Array(D * H * W);
  const label = new Uint8Array(D * H * W);
  const fg: number[] = [];
  for (let i = 0; i < image.length; i++) {
    const z = Math.floor(i / (H * W));
    image[i] = z;
    label[i] = z < D / 2 ? 1 : 0;
    if (label[i]) fg.push(i);
  }
  return { image, label, size, foreground: Uint32Array.from(fg), padValue: pad };
}

describe('patches for the deformation, with a margin', () => {
  // segment's windows lie flush with the volume's faces; the windows training deforms must reach there
  // too, or the outer margin of every axis is never trained at a window edge (with the deformation's
  // margin of 3 sigma cut inside the volume, the first and last 6 voxels never were, and the
  // tiny-preset default run's mask was wrong mostly in the slices nearest the faces)
  it('the window inside the margin takes every position a segment window can, the margin padded outside', () => {
    const c = rampCase([20, 12, 12], -1);
    const m = 3;
    const rnd = models.patchRandom(4);
    const firstRows = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const p = models.samplePatch(c, [8 + 2 * m, 8 + 2 * m, 8 + 2 * m], rnd, { margin: m, flip: false, foregroundProbability: i % 2 });
      const at = (d: number, h: number, w: number) => p.image[(d * 14 + h) * 14 + w];
      // the window (d, h, w in [m, m + 8)) is inside the volume, which is larger than it on every axis
      for (let d = m; d < m + 8; d++) for (let h = m; h < m + 8; h++) expect(at(d, h, m)).toBeGreaterThanOrEqual(0);
      firstRows.add(at(m, m, m));
    }
    // window starts 0 .. 20 - 8 along z: flush with both faces
    expect([...firstRows].sort((a, b) => a - b)).toEqual(Array.from({ length: 13 }, (_, i) => i));
  });

  it('sampleBatch with a deformation reaches the first and the last slice at the patch edges', async () => {
    const c = rampCase([24, 16, 16], 0);
    const rnd = models.patchRandom(9);
    let lowest = Infinity;
    let highest = -Infinity;
    for (let i = 0; i < 12; i++) {
      // sigma 1: a margin of 3 voxels
      const { images, labels } = models.sampleBatch([c], [16, 16, 16], 1, rnd, { flip: false, foregroundProbability: 0, deformation: { sigma: 1, cells: 2 } });
      const x = await images.read();
      images.dispose();
      labels.dispose();
      const mean = (d: number) => x.slice(d * 256, (d + 1) * 256).reduce((a, v) => a + v, 0) / 256;
      lowest = Math.min(lowest, mean(0));
      highest = Math.max(highest, mean(15));
    }
    // flush windows read z 0 and 23 there (give or take the displacement); kept 3 voxels inside, >= 2 and <= 21
    expect(lowest).toBeLessThan(1.5);
    expect(highest).toBeGreaterThan(21.5);
  });
});

describe('VNet.calibrateBatchNorm', () => {
  // segment-time statistics of the final weights: every batch norm's running mean and variance become
  // the plain average of the passes' batch statistics (each pass normalised by its own, so a pass's
  // statistics do not depend on the buffers), not training's moving average
  it('running statistics after passes a, b are the mean of those after a alone and after b alone', async () => {
    manualSeed(3);
    const net = new models.VNet({ preset: 'tiny', baseChannels: BASE });
    // 16 x 32 x 32: batch norm at 1/16 resolution needs 2 or more values per channel
    const a = ballCase([16, 32, 32], [8, 7, 9], 5).image;
    const b = ballCase([16, 32, 32], [4, 21, 16], 6).image.map((v) => 2 * v + 0.5);
    const stats = async (inputs: Float32Array[]) => {
      net.calibrateBatchNorm(inputs.length, (i) => tensor(inputs[i], [1, 1, 16, 32, 32]));
      const out = new Map<string, Float32Array>();
      for (const [k, t] of net.stateDict()) if (k.includes('running_')) out.set(k, await t.read());
      return out;
    };
    const sa = await stats([a]);
    const sb = await stats([b]);
    const sab = await stats([a, b]);
    expect(net.training).toBe(true);
    expect(sab.size).toBeGreaterThan(20);
    let worst = 0;
    for (const [k, v] of sab) {
      const va = sa.get(k)!;
      const vb = sb.get(k)!;
      for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i] - (va[i] + vb[i]) / 2) / (1e-3 + Math.abs(va[i]) + Math.abs(vb[i])));
      // the two passes differ, so a moving average or the last pass alone would not match
      expect(va.some((x, i) => Math.abs(x - vb[i]) > 1e-3 * (1 + Math.abs(x))), k).toBe(true);
    }
    expect(worst).toBeLessThan(1e-4);
    disposeNet(net);
  });
});

describe('VNetTrainer', () => {
  it('four Adam steps on a fixed batch of two 16^3 patches reduce the Dice loss', async () => {
    manualSeed(2);
    const net = new models.VNet({ preset: 'tiny', baseChannels: BASE });
    const trainer = new models.VNetTrainer(net, { lr: 1e-2 });
    // batch norm in training needs two values per channel at 1/16 resolution: two patches
    const a = ballCase([16, 16, 16], [8, 7, 9], 5);
    const b = ballCase([16, 16, 16], [5, 10, 6], 4);
    const x = tensor([...a.image, ...b.image], [2, 1, 16, 16, 16]);
    const y = tensor([...a.label, ...b.label], [2, 16, 16, 16]);
    const losses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await trainer.step(x, y);
      expect(r.dice).toBeGreaterThanOrEqual(0);
      expect(r.dice).toBeLessThanOrEqual(1);
      losses.push(r.loss);
    }
    expect(losses[0]).toBeGreaterThan(0);
    expect(losses[0]).toBeLessThan(1);
    expect(losses[3], `losses ${losses.join(', ')}`).toBeLessThan(losses[0]);
    x.dispose();
    y.dispose();
    trainer.optimizer.dispose();
    disposeNet(net);
  });
});

describe('medseg train', () => {
  it('trains on the spleen crop, records config and preprocessing, and resumes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medseg-train-'));
    const image = new URL('ct_spleen_msd09_crop.nii.gz', DATA).pathname;
    const label = new URL('ct_spleen_msd09_crop_label.nii.gz', DATA).pathname;
    const out = join(dir, 'w.safetensors');
    const run = async (args: string[]) => {
      const lines: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (lines.push(String(s)), true));
      const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        await buildProgram().parseAsync(['node', 'medseg', 'train', ...args, '--json', '--no-progress']);
      } finally {
        spy.mockRestore();
        err.mockRestore();
      }
      return JSON.parse(lines.join(''));
    };
    const common = ['--image', image, '--label', label, '-o', out];
    const r1 = await run(['--model', 'vnet', '--config', 'tiny', '--base-channels', String(BASE), '--spacing', '6.4,6.4,10', '--patch', '16,16,16', '--batch-size', '2', '--steps', '2', '--keep-best', '1', '--bn-calibration', '0', ...common]);
    expect(r1.totalSteps).toBe(2);
    expect(r1.history).toHaveLength(2);
    expect(r1.history[0].loss).toBeGreaterThan(0);
    const f1 = await weights.readSafetensors(readFileSync(out));
    expect(f1.metadata).toMatchObject({ model: 'vnet', steps: '2', trained_on: 'ct_spleen_msd09_crop.nii.gz' });
    // --keep-best 1: the weights after the step with the higher training Dice (the earlier one on a tie)
    const dices: number[] = r1.history.map((h: { dice: number }) => h.dice);
    const bestStep = dices[1] > dices[0] ? 2 : 1;
    const best = await weights.readSafetensors(readFileSync(bestPath(out)));
    expect(best.metadata).toMatchObject({ model: 'vnet', steps: String(bestStep), train_dice_steps: `${bestStep}-${bestStep}` });
    expect(Number(best.metadata.train_dice)).toBeCloseTo(dices[bestStep - 1], 3);
    if (bestStep === 2) {
      // the best weights are then the final ones, byte for byte (--bn-calibration 0: no calibration changes the final running statistics)
      const bytes = async (f: typeof f1) => Promise.all(f.tensors.map(async (t) => [t.name, Buffer.from(await t.read()).toString('hex')]));
      expect(await bytes(best)).toEqual(await bytes(f1));
    }
    expect(JSON.parse(f1.metadata.vnet_config)).toMatchObject({ baseChannels: BASE, variant: 'vnet.pytorch' });
    expect(JSON.parse(f1.metadata.vnet_preprocessing)).toMatchObject({ spacing: [6.4, 6.4, 10], patch: [16, 16, 16], intensity: { kind: 'ct-window' } });

    // resumed with the poly schedule and without deformation
    const r2 = await run(['--resume', out, '--steps', '1', '--batch-size', '2', '--lr-schedule', 'poly', '--deform-sigma', '0', ...common]);
    expect(r2.totalSteps).toBe(3);
    expect(r2.config).toMatchObject({ baseChannels: BASE, preprocessing: { patch: [16, 16, 16] } });
    const f2 = await weights.readSafetensors(readFileSync(out));
    expect(f2.metadata.steps).toBe('3');
  });
});
