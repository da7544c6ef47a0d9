// TransUNet fine-tuning (src/models/transunet/train.ts) against trainer.py and dataset_synapse.py:
// the loss 0.5 CE + 0.5 DiceLoss(softmax) and its gradient against test/fixtures/transunet_reference.py's
// float64 PyTorch golden (utils.DiceLoss transcribed, a class absent from the labels included);
// three SGD steps of a tiny model against the float64 SGD trace of test/reference/optim.ts with
// trainer.py's learning rates (base, base, base (1 - 1/max)^0.9); the augmentations' geometry
// (ndimage.rotate order 0 against SciPy goldens, np.rot90 / np.flip worked out by hand, image and
// label moved together, labels staying classes, RandomGenerator's draw frequencies and zoom); and
// a few tiny-model steps on a synthetic two-organ case lowering the loss.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { models, tensor, type Tensor } from '../../src/index.js';
import { manualSeed, rng } from '../../src/tensor.js';
import { transunetLosses, TransUNetTrainer, rot90, flip, rotateNearest, applyAugmentation, drawAugmentation, randomGenerator, type TrainingSlice } from '../../src/models/transunet/train.js';
import { expectClose, ready } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { sgdTrace } from '../reference/optim.js';
import { expectGolden, fillModule, fixtureTensor, golden } from './transunet-helpers.js';

beforeAll(ready);

const owned: Tensor[] = [];
const made: models.TransUNet[] = [];
afterEach(() => {
  for (const t of owned.splice(0)) t.dispose();
  for (const m of made.splice(0)) for (const [, t] of m.stateDict()) t.dispose();
});

/** transunet_reference.py's train_label: classes 0..2 of 4 (class 3 absent). */
const trainLabel = (n: number, y: number, x: number) => (n * 7 + y * 3 + x * 5) % 3;

describe("TransUNet's loss (trainer.py)", () => {
  it('0.5 CE + 0.5 Dice and its gradient equal PyTorch (float64), an absent class included', async () => {
    const [N, C, H, W] = [2, 4, 5, 6];
    const logits = fixtureTensor('input.train.logits', [N, C, H, W], 0, 2, true);
    const lab = new Float32Array(N * H * W);
    for (let n = 0; n < N; n++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) lab[(n * H + y) * W + x] = trainLabel(n, y, x);
    const labels = tensor(lab, [N, H, W]);
    const { loss, ce, dice } = transunetLosses(logits, labels);
    owned.push(logits, labels, loss, ce, dice);
    const tol = reductionTol(N * H * W);
    await expectGolden(ce.reshape([1]), 'train.loss.ce', tol);
    await expectGolden(dice.reshape([1]), 'train.loss.dice', tol);
    await expectGolden(loss.reshape([1]), 'train.loss', tol);
    loss.backward();
    await expectGolden(logits.grad!, 'train.loss.grad', tol);
  });
});

describe('TransUNet augmentations (RandomGenerator)', () => {
  const plane = (h: number, w: number, f: (y: number, x: number) => number) => Float32Array.from({ length: h * w }, (_, i) => f(Math.floor(i / w), i % w));

  it('ndimage.rotate(order=0, reshape=False) equals SciPy at -20, -7, 13 and 19 degrees', () => {
    const a = plane(13, 10, (y, x) => ((y * 10 + x) * 7) % 9);
    for (const angle of [-20, -7, 13, 19]) {
      const want = golden(`augment.rotate.${angle}`);
      expect(want.shape).toEqual([13, 10]);
      const r = rotateNearest({ data: a, h: 13, w: 10 }, angle);
      expect([r.h, r.w]).toEqual([13, 10]);
      expect(Array.from(r.data), `rotate ${angle}`).toEqual(Array.from(want.data));
      // labels: the same pixels as integers
      expect(Array.from(rotateNearest({ data: Uint8Array.from(a), h: 13, w: 10 }, angle).data)).toEqual(Array.from(want.data));
    }
  });

  it('np.rot90 and np.flip (worked out by hand on a 3 x 5 plane); rotate by 90 equals rot90', () => {
    const a = { data: plane(3, 5, (y, x) => y * 5 + x), h: 3, w: 5 };
    const r1 = rot90(a, 1);
    expect([r1.h, r1.w]).toEqual([5, 3]);
    expect(Array.from(r1.data)).toEqual([4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11, 0, 5, 10]);
    expect(Array.from(rot90(a, 2).data)).toEqual([14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(Array.from(rot90(a, 3).data)).toEqual([10, 5, 0, 11, 6, 1, 12, 7, 2, 13, 8, 3, 14, 9, 4]);
    expect(Array.from(rot90(a, 0).data)).toEqual(Array.from(a.data));
    expect(Array.from(flip(a, 0).data)).toEqual([10, 11, 12, 13, 14, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4]);
    expect(Array.from(flip(a, 1).data)).toEqual([4, 3, 2, 1, 0, 9, 8, 7, 6, 5, 14, 13, 12, 11, 10]);
    const sq = { data: plane(5, 5, (y, x) => y * 5 + x), h: 5, w: 5 };
    expect(Array.from(rotateNearest(sq, 90).data)).toEqual(Array.from(rot90(sq, 1).data));
  });

  it('image and label move together and the label stays integer classes', () => {
    // the label is a function of the image (class = image value * 4), so it must stay so pixel by pixel
    const h = 24;
    const w = 20;
    const image = plane(h, w, (y, x) => ((Math.floor(y / 4) + Math.floor(x / 5)) % 4) / 4 + 0.25);
    const s: TrainingSlice = { image: { data: image, h, w }, label: { data: Uint8Array.from(image, (v) => v * 4), h, w } };
    const augs = [
      { kind: 'rot90-flip' as const, k: 1, axis: 0 as const },
      { kind: 'rot90-flip' as const, k: 3, axis: 1 as const },
      { kind: 'rotate' as const, angle: -17 },
      { kind: 'rotate' as const, angle: 11 },
    ];
    for (const a of augs) {
      const o = applyAugmentation(s, a);
      expect([o.label.h, o.label.w]).toEqual([o.image.h, o.image.w]);
      let zeros = 0;
      for (let i = 0; i < o.label.data.length; i++) {
        expect(o.label.data[i]).toBe(o.image.data[i] * 4);
        if (o.label.data[i] === 0) zeros++;
      }
      // a rotation leaves zeros in the corners (image and label alike); quarter turns do not
      expect(zeros > 0).toBe(a.kind === 'rotate');
    }
    // RandomGenerator: zoom to 32 x 32 after the augmentation; labels stay classes 0..4
    const random = rng(5);
    for (let t = 0; t < 6; t++) {
      const o = randomGenerator(s, 32, random);
      expect([o.image.h, o.image.w, o.label.h, o.label.w]).toEqual([32, 32, 32, 32]);
      expect(o.label.data.every((v) => v <= 4)).toBe(true);
      expect(o.image.data.length).toBe(32 * 32);
    }
  });

  it("RandomGenerator's draw: rot90 + flip half the time, a rotation in [-20, 19] a quarter", () => {
    const random = rng(11);
    const n = 4000;
    const count = { none: 0, 'rot90-flip': 0, rotate: 0 };
    const ks = new Set<number>();
    const angles = new Set<number>();
    for (let i = 0; i < n; i++) {
      const a = drawAugmentation(random);
      count[a.kind]++;
      if (a.kind === 'rot90-flip') ks.add(a.k);
      if (a.kind === 'rotate') angles.add(a.angle);
    }
    expect(Math.abs(count['rot90-flip'] / n - 0.5)).toBeLessThan(0.03);
    expect(Math.abs(count.rotate / n - 0.25)).toBeLessThan(0.03);
    expect([...ks].sort()).toEqual([0, 1, 2, 3]);
    expect(Math.min(...angles)).toBe(-20);
    expect(Math.max(...angles)).toBe(19);
    expect(angles.size).toBe(40);
  });
});

/** n (1 or 2) 32 x 32 images: background 0.2, a disk of class 1 (0.8) and a square of class 2 (0.5). */
function syntheticBatch(n: number): { images: Tensor; labels: Tensor } {
  const S = 32;
  const img = new Float32Array(n * S * S).fill(0.2);
  const lab = new Float32Array(n * S * S);
  for (let b = 0; b < n; b++) {
    const [cy, cx] = b ? [20, 12] : [11, 19];
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) {
        const i = b * S * S + y * S + x;
        if ((y - cy) ** 2 + (x - cx) ** 2 < 36) (img[i] = 0.8), (lab[i] = 1);
        else if (Math.abs(y - (S - cy)) < 5 && Math.abs(x - (S - cx)) < 5) (img[i] = 0.5), (lab[i] = 2);
      }
  }
  const images = tensor(img, [n, 1, S, S]);
  const labels = tensor(lab, [n, S, S]);
  owned.push(images, labels);
  return { images, labels };
}

describe('TransUNetTrainer', () => {
  it("SGD momentum 0.9, weight decay 1e-4 with trainer.py's poly lr: three steps against the float64 trace", async () => {
    const m = new models.TransUNet({ config: 'tiny', numClasses: 3 });
    made.push(m);
    fillModule(m, 'sgd.');
    const maxSteps = 5;
    const tr = new TransUNetTrainer(m, { baseLr: 0.01, maxSteps });
    const { images, labels } = syntheticBatch(1);
    const names = ['segmentation_head.0.weight', 'decoder.blocks.1.conv2.0.weight', 'transformer.encoder.layer.0.attn.query.bias', 'transformer.embeddings.hybrid_model.root.conv.weight'];
    const params = new Map(m.namedParameters());
    const p0 = await Promise.all(names.map((k) => params.get(k)!.read()));
    const grads: Float32Array[][] = names.map(() => []);
    const after: Float32Array[][] = names.map(() => []);
    const lrs: number[] = [];
    for (let t = 0; t < 3; t++) {
      const r = await tr.step(images, labels);
      lrs.push(r.lr);
      for (let j = 0; j < names.length; j++) {
        const p = params.get(names[j])!;
        grads[j].push(await p.grad!.read());
        after[j].push(await p.read());
      }
    }
    expect(lrs[0]).toBe(0.01);
    expect(lrs[1]).toBe(0.01);
    expect(lrs[2]).toBeCloseTo(0.01 * (1 - 1 / maxSteps) ** 0.9, 12);
    for (let j = 0; j < names.length; j++) {
      const trace = sgdTrace(p0[j], grads[j], { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 }, [0.01, 0.01, 0.01 * 0.8 ** 0.9]);
      for (let t = 0; t < 3; t++) expectClose(after[j][t], trace[t], { rtol: 1e-6, atol: 1e-7 }, `${names[j]} after step ${t + 1}`);
    }
    tr.dispose();
  });

  it('a few steps on a synthetic two-organ case lower the loss', async () => {
    manualSeed(21);
    const m = new models.TransUNet({ config: 'tiny', numClasses: 3 });
    made.push(m);
    const tr = new TransUNetTrainer(m, { baseLr: 0.05, maxSteps: 40 });
    const { images, labels } = syntheticBatch(2);
    const losses: number[] = [];
    for (let t = 0; t < 6; t++) losses.push((await tr.step(images, labels)).loss);
    console.log(`losses: ${losses.map((v) => v.toFixed(4)).join(' ')}`);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect((losses[4] + losses[5]) / 2).toBeLessThan(0.85 * losses[0]);
    tr.dispose();
  });

  it('refuses a bad schedule and mismatched label planes', () => {
    const m = new models.TransUNet({ config: 'tiny', numClasses: 3 });
    made.push(m);
    expect(() => new TransUNetTrainer(m, { maxSteps: 0 })).toThrow(/maxSteps must be a positive integer/);
    const s: TrainingSlice = { image: { data: new Float32Array(12), h: 3, w: 4 }, label: { data: new Uint8Array(12), h: 4, w: 3 } };
    expect(() => randomGenerator(s, 32, rng(1))).toThrow(/label 4x3 differs from the image's 3x4/);
  });
});
