// Work in flight together on one runtime gives what it gives one at a time: two MedSAM predictions
// started together on one predictor equal the same predictions run one after the other, bit for bit;
// a V-Net training step started while a segmentation of another network is between windows (from
// its progress callback, so the two interleave at a known point) gives the same loss, the same
// weights and the same labels as the step and the segmentation run one after the other.
import { beforeAll, describe, expect, it } from 'vitest';
import { models, tensor, type Tensor } from '../../src/index.js';
import { ready } from '../helpers.js';
import { randomArr } from '../reference/ndarray.js';
import { fillModule } from '../models/medsam-helpers.js';
import { BASE, disposeNet, loadArrs, randomState } from '../models/vnet-helpers.js';

beforeAll(ready);

const gray = (h: number, w: number) => Uint8Array.from({ length: h * w }, (_, i) => Math.floor(127.5 + 127 * Math.sin(i * 0.37) * Math.cos(i * 0.011)));

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  expect(a.length, `${what}: length`).toBe(b.length);
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) differ++;
  expect(differ, `${what}: values that differ`).toBe(0);
}

describe('concurrent work on one runtime', () => {
  it('two MedSAM predictions in flight on one predictor equal the sequential ones, bit for bit', async () => {
    const net = new models.MedSAM({ config: 'tiny' });
    fillModule(net);
    const p = await net.predictor();
    await p.setImage({ data: gray(75, 50), width: 50, height: 75, channels: 1 });
    const a: models.Box = [10, 15, 40, 60];
    const b: models.Box[] = [[3, 30, 25, 70], [20, 5, 48, 40]];
    const seqA = await p.predict({ box: a });
    const seqB = await p.predict({ box: b });
    const [parA, parB] = await Promise.all([p.predict({ box: a }), p.predict({ box: b })]);
    for (const [s, q, name] of [[seqA, parA, 'one box'], [seqB, parB, 'two boxes']] as const) {
      sameBits(q.lowResLogits, s.lowResLogits, `${name}: low-res logits`);
      sameBits(q.iou, s.iou, `${name}: IoU`);
      sameBits(q.masks, s.masks, `${name}: masks`);
    }
    // the one-box prediction differs from the two-box one: the comparison can fail
    expect(seqA.lowResLogits.slice(0, 16)).not.toEqual(seqB.lowResLogits.slice(0, 16));
    for (const r of [seqA, seqB, parA, parB]) r.lowResLogitsTensor.dispose();
    p.reset();
    for (const [, t] of net.stateDict()) t.dispose();
  });

  it('a V-Net training step interleaved with a segmentation gives the loss, weights and labels of the two run in turn', async () => {
    const S = [16, 16, 16];
    const n = 16 ** 3;
    // a batch of 2 (the tiny V-Net's bottom batch norm needs more than one value per channel)
    const img = Float32Array.from({ length: 2 * n }, (_, i) => ((i % 16) > 4 && (i % 16) < 11 ? 1 : 0) + 0.1 * Math.sin(i));
    const lab = Float32Array.from({ length: 2 * n }, (_, i) => ((i % 16) > 4 && (i % 16) < 11 ? 1 : 0));
    // a scan of 3 x 1 x 2 windows of 16^3 at the model spacing (overlap 0.5)
    const hu = randomArr([32, 16, 24], 5, -300, 400);
    const vol = { data: hu.f32(), dims: [24, 16, 32] as [number, number, number], spacing: [2, 2, 3] as [number, number, number], affine: [], datatype: 16, header: null as never };
    const pre: models.VNetPreprocessing = { spacing: [2, 2, 3], intensity: { kind: 'ct-window', min: -100, max: 200 }, patch: [16, 16, 16], overlap: 0.5 };
    const config = { preset: 'tiny' as const, baseChannels: BASE };

    const run = async (interleave: boolean) => {
      const trained = new models.VNet(config);
      loadArrs(trained, randomState(trained, 11));
      const segmenter = new models.VNet(config);
      loadArrs(segmenter, randomState(segmenter, 12));
      const trainer = new models.VNetTrainer(trained, { lr: 1e-2 });
      const images = tensor(img, [2, 1, ...S]);
      const labels = tensor(lab, [2, ...S]);
      let step: Promise<models.StepResult> | null = null;
      let seg: models.SegmentResult;
      let windowsBefore = -1;
      if (interleave) {
        seg = await models.segmentVolume(segmenter, vol, pre, {
          onProgress: (pr) => {
            if (pr.stage === 'windows' && pr.done === 1 && !step) {
              windowsBefore = pr.done;
              step = trainer.step(images, labels);
            }
          },
        });
      } else {
        step = trainer.step(images, labels);
        await step;
        seg = await models.segmentVolume(segmenter, vol, pre);
      }
      const result = await step!;
      const weights = new Map<string, Float32Array>();
      for (const [k, t] of trained.stateDict()) weights.set(k, await t.read());
      trainer.optimizer.dispose();
      images.dispose();
      labels.dispose();
      disposeNet(trained);
      disposeNet(segmenter);
      return { result, weights, labels: seg.labels, windows: seg.windows, windowsBefore };
    };
    const seq = await run(false);
    const par = await run(true);
    expect(par.windows).toBe(6);
    expect(par.windowsBefore, 'the step started between windows').toBe(1);
    expect(Object.is(par.result.loss, seq.result.loss), `loss ${par.result.loss} vs ${seq.result.loss}`).toBe(true);
    expect(par.result.dice).toBe(seq.result.dice);
    for (const [k, w] of seq.weights) sameBits(par.weights.get(k)!, w, `weight ${k}`);
    sameBits(par.labels, seq.labels, 'segmentation labels');
  });
});
