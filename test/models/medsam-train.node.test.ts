// MedSAM fine-tuning (train_one_gpu.py's recipe): the loss against PyTorch's (Dice with squared
// predictions + BCE on logits upsampled to the input size), the jittered box of a mask, and the tiny
// model's decoder fine-tuned with a frozen, cached encoder on the bundled spleen crop's slice 13
// (CT window as pre_CT_MR.py, MedSAM pre-processing to 64 x 64, the label resized nearest), boxes
// from the label with MedSAM's jitter. With the formula's random weights the network knows nothing
// of spleens: the test checks that the loss falls and the training Dice (one slice, learnt by heart) passes 0.8, and prints both.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { io, models, noGrad, tensor } from '../../src/index.js';
import { rng } from '../../src/tensor.js';
import { ready } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { chainLengths, expectGolden, fillModule, fixtureTensor, fixtureValues } from './medsam-helpers.js';

beforeAll(ready);

const STEPS = 150;

describe('MedSAM fine-tuning', () => {
  it("medsamLoss equals train_one_gpu.py's DiceLoss(sigmoid, squared_pred) + BCEWithLogits", async () => {
    const net = new models.MedSAM({ config: 'tiny' });
    fillModule(net);
    net.eval();
    const S = net.config.imageSize;
    const out = noGrad(() => net.forward(fixtureTensor('input.image', [1, 3, S, S], 0.5, 0.5), { boxes: tensor([[10.0, 14.5, 41.0, 52.25]]) }));
    const target = tensor(Float32Array.from(fixtureValues('input.target', [1, 1, S, S], 0.5, 0.5), (v) => (v > 0.7 ? 1 : 0)), [1, 1, S, S]);
    const loss = noGrad(() => models.medsamLoss(out.lowResLogits, target));
    const { encoderK, decoderK } = chainLengths(net.config);
    await expectGolden(loss.reshape([1]), 'tiny.loss', reductionTol(encoderK + decoderK + S * S));
    for (const [, t] of net.stateDict()) t.dispose();
  });

  it('jitteredBox: the bounding box moved out by 0..shift per side, clipped', () => {
    const m = new Uint8Array(10 * 8);
    m[2 * 10 + 3] = 1;
    m[5 * 10 + 6] = 1;
    expect(models.jitteredBox(m, 10, 8, 0)).toEqual([3, 2, 6, 5]);
    const r = rng(5);
    for (let i = 0; i < 20; i++) {
      const [x0, y0, x1, y1] = models.jitteredBox(m, 10, 8, 4, r)!;
      expect(x0).toBeGreaterThanOrEqual(0);
      expect(x0).toBeLessThanOrEqual(3);
      expect(y0).toBeLessThanOrEqual(2);
      expect(x1).toBeGreaterThanOrEqual(6);
      expect(x1).toBeLessThanOrEqual(10);
      expect(y1).toBeLessThanOrEqual(8);
    }
    expect(models.jitteredBox(new Uint8Array(4), 2, 2, 3)).toBeNull();
  });

  it('the tiny decoder, encoder frozen and its embedding cached, fine-tunes on the spleen slice: the loss falls, the training Dice passes 0.8', async () => {
    const vol = io.readNifti(readFileSync(new URL('../../data/ct_spleen_msd09_crop.nii.gz', import.meta.url)));
    const lab = io.readNifti(readFileSync(new URL('../../data/ct_spleen_msd09_crop_label.nii.gz', import.meta.url)));
    const [nx, ny] = vol.dims;
    const z = 13;
    const plane = (v: Float32Array) => v.subarray(z * nx * ny, (z + 1) * nx * ny);
    const hu = Float64Array.from(plane(vol.data), (v) => Math.min(240, Math.max(-160, v)));
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of hu) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    const gray = Uint8Array.from(hu, (v) => Math.trunc(((v - lo) / Math.max(hi - lo, 1e-8)) * 255));
    const net = new models.MedSAM({ config: 'tiny' });
    fillModule(net);
    const S = net.config.imageSize;
    const image = tensor(models.medsamPreprocess({ data: gray, width: nx, height: ny, channels: 1 }, S), [1, 3, S, S]);
    // the label at S x S, nearest neighbour at pixel centres
    const label = plane(lab.data);
    const mask = new Float32Array(S * S);
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) mask[y * S + x] = label[Math.floor(((y + 0.5) * ny) / S) * nx + Math.floor(((x + 0.5) * nx) / S)] > 0 ? 1 : 0;
    expect(mask.reduce((a, b) => a + b, 0), 'spleen pixels at 64 x 64').toBeGreaterThan(20);
    const masks = tensor(mask, [1, 1, S, S]);
    const trainer = new models.MedSAMTrainer(net, { freezeEncoder: true, lr: 1e-3 });
    const embedding = trainer.embed(image);
    const r = rng(13);
    const steps: models.MedSAMStep[] = [];
    const t = performance.now();
    for (let i = 0; i < STEPS; i++) {
      const box = models.jitteredBox(mask, S, S, 2, r)!; // MedSAM's 20 px at 1024, scaled to 64
      steps.push(await trainer.step({ embedding, boxes: tensor([box], [1, 4]), masks }));
    }
    const ms = (performance.now() - t) / steps.length;
    const first = steps[0];
    const last = steps.slice(-5);
    const mean = (k: 'loss' | 'dice') => last.reduce((a, s) => a + s[k], 0) / last.length;
    console.log(`tiny MedSAM decoder fine-tuning on spleen slice ${z}: loss ${first.loss.toFixed(3)} -> ${mean('loss').toFixed(3)}, training Dice ${first.dice.toFixed(3)} -> ${mean('dice').toFixed(3)} (mean of the last 5 of ${STEPS} steps), ${ms.toFixed(0)} ms per step`);
    expect(mean('loss')).toBeLessThan(first.loss);
    expect(mean('dice'), 'training Dice at the end').toBeGreaterThan(0.8);
    trainer.dispose();
    for (const x of [image, masks, embedding]) x.dispose();
    for (const [, w] of net.stateDict()) w.dispose();
  });
});
