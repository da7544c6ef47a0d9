// The tiny models under repetition, concurrency and reseeding, in one file so that the kernels
// compile once (compiling is most of the time on CPU adapters). Node projects only (SwiftShader and
// llvmpipe; the browser runs the same runtime code on SwiftShader), with smaller counts on
// SwiftShader, where a V-Net training step takes seconds, than on llvmpipe.
// - Concurrency: two MedSAM predictions in flight on one predictor equal the sequential ones bit for
//   bit; a V-Net training step started while a segmentation of another network waits between its
//   windows (from its progress callback, so the two interleave at a known point) gives the losses,
//   weights and labels of the two run one after the other.
// - Determinism: the V-Net runs above start from manualSeed(7) (initialisation and every later draw
//   from the seeded generator) and take two Adam steps each (one on SwiftShader): they agree bit for bit;
//   seed 8 initialises other weights. The MedSAM tiny mask decoder: two runs of AdamW steps from
//   the same seed give the same losses and weights bit for bit.
// - Leaks: repeated V-Net and TransUNet forward passes, MedSAM predictions and image changes, and
//   MedSAM decoder, V-Net and TransUNet training steps leave memoryStats()'s live tensors and bytes
//   at their baseline. CI runs a few of each; MEDSEG_LEAK_FULL=1 runs the counts of the issue: 500
//   forward passes (predictions) of each tiny model and 200 training steps of each trainer (about
//   14 to 23 minutes on llvmpipe with 2 cores, by load; the two seeded decoder and V-Net runs each take 200 steps).
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed, memoryStats, models, noGrad, runtime, tensor, type Tensor } from '../../src/index.js';
import { rng } from '../../src/tensor.js';
import { TransUNet, TransUNetTrainer } from '../../src/models/transunet/index.js';
import { ready } from '../helpers.js';
import { randomArr } from '../reference/ndarray.js';
import { fillModule } from '../models/medsam-helpers.js';

beforeAll(ready);

const slow = () => /swiftshader/i.test(runtime().adapterName);

/** MEDSEG_LEAK_FULL=1: the counts (500 forward passes, 200 training steps), else CI's. */
const FULL = globalThis.process?.env?.MEDSEG_LEAK_FULL === '1';
const passes = (ci: number) => (FULL ? 500 : ci);
const trainingSteps = (ci: number) => (FULL ? 200 : ci);
/** A per-test timeout for the full counts (the config's 10 minutes otherwise). */
const timeout = FULL ? 3 * 3600_000 : undefined;

function differing(a: Map<string, Float32Array>, b: Map<string, Float32Array>): string[] {
  const out: string[] = [];
  for (const [k, x] of a) {
    const y = b.get(k)!;
    if (x.length !== y.length || x.some((v, i) => !Object.is(v, y[i]))) out.push(k);
  }
  return out;
}

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  expect(a.length, `${what}: length`).toBe(b.length);
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) differ++;
  expect(differ, `${what}: values that differ`).toBe(0);
}

async function readAll(entries: Iterable<[string, Tensor]>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, t] of entries) out.set(k, await t.read());
  return out;
}


const live = () => {
  const s = memoryStats();
  return { tensors: s.liveTensors, bytes: s.liveBytes };
};

describe('MedSAM tiny', () => {
  const gray = (h: number, w: number, k: number) => Uint8Array.from({ length: h * w }, (_, i) => Math.floor(127.5 + 127 * Math.sin(i * 0.37 + k) * Math.cos(i * 0.011)));

  it('two predictions in flight equal the sequential ones; repeated predictions and new images keep live memory at its baseline', async () => {
    const net = new models.MedSAM({ config: 'tiny' });
    fillModule(net);
    const p = await net.predictor();
    await p.setImage({ data: gray(75, 50, 0), width: 50, height: 75, channels: 1 });
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
    expect(seqA.lowResLogits.slice(0, 16), 'one box and two boxes differ (the comparison can fail)').not.toEqual(seqB.lowResLogits.slice(0, 16));
    for (const r of [seqA, seqB, parA, parB]) r.lowResLogitsTensor.dispose();

    const base = live();
    // a new image half way on llvmpipe (the encoder is slow on SwiftShader), every 50 predictions with the full counts
    const N = passes(slow() ? 6 : 12);
    const imageEvery = FULL ? 50 : slow() ? 0 : N / 2;
    let images = 0;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      if (imageEvery && i > 0 && i % imageEvery === 0) await p.setImage({ data: gray(75, 50, ++images), width: 50, height: 75, channels: 1 });
      const r = await p.predict({ box: i % 2 ? a : b });
      r.lowResLogitsTensor.dispose();
    }
    const end = live();
    console.log(`MedSAM tiny: ${N} predictions and ${images} new images in ${((performance.now() - t0) / 1000).toFixed(1)} s: live tensors ${base.tensors} -> ${end.tensors}, bytes ${base.bytes} -> ${end.bytes}`);
    expect(end).toEqual(base);
    p.reset();
    net.dispose();
  }, timeout);

  it('decoder training: the same seed gives the same losses and weights bit for bit; the steps keep live memory at its baseline', async () => {
    const S = models.MEDSAM_CONFIGS.tiny.imageSize;
    const mask = Float32Array.from({ length: S * S }, (_, i) => (Math.abs((i % S) - 30) < 10 && Math.abs(Math.floor(i / S) - 28) < 12 ? 1 : 0));
    const steps = trainingSteps(slow() ? 3 : 12);
    const run = async (seed: number, count: number) => {
      manualSeed(seed);
      const net = new models.MedSAM({ config: 'tiny' });
      const trainer = new models.MedSAMTrainer(net, { freezeEncoder: true, lr: 1e-3 });
      const masks = tensor(mask, [1, 1, S, S]);
      // the frozen encoder's output is an input of the decoder's training: a seeded stand-in
      const g = S / net.config.patchSize;
      const r = rng(seed);
      const C = net.config.promptEmbedDim;
      const embedding = tensor(Float32Array.from({ length: C * g * g }, () => r() - 0.5), [1, C, g, g]);
      const losses: number[] = [];
      let base = live();
      for (let s = 0; s < count; s++) {
        if (s === 1) base = live(); // after the first step allocated AdamW's state
        const boxes = tensor([[20 - (s % 3), 16, 40 + (s % 3), 40]], [1, 4]);
        losses.push((await trainer.step({ embedding, boxes, masks })).loss);
        boxes.dispose();
      }
      const end = live();
      const weights = await readAll(net.mask_decoder.stateDict());
      trainer.dispose();
      for (const t of [masks, embedding]) t.dispose();
      net.dispose();
      return { losses, weights, base, end };
    };
    const t0 = performance.now();
    const a = await run(3, steps);
    const seconds = (performance.now() - t0) / 1000;
    const b = await run(3, steps);
    const c = await run(4, 1);
    console.log(`MedSAM tiny decoder: ${steps} steps in ${seconds.toFixed(1)} s: live tensors ${a.base.tensors} -> ${a.end.tensors}, bytes ${a.base.bytes} -> ${a.end.bytes}`);
    expect(a.end, `live memory after ${steps} steps`).toEqual(a.base);
    expect(b.losses.map((l, i) => Object.is(l, a.losses[i])), `losses ${a.losses} vs ${b.losses}`).toEqual(new Array(steps).fill(true));
    expect(a.losses[steps - 1], 'the decoder learns').toBeLessThan(a.losses[0]);
    expect(differing(a.weights, b.weights), 'decoder entries that differ between two runs with seed 3').toEqual([]);
    expect(c.losses[0], 'seed 4 starts elsewhere').not.toBe(a.losses[0]);
    expect(differing(a.weights, c.weights).length, 'decoder entries that differ between seeds 3 and 4').toBeGreaterThan(a.weights.size / 2);
  }, timeout);
});

describe('V-Net tiny', () => {
  it('a training step interleaved with a segmentation, from seed 7, gives the trajectory, weights and labels of the sequential run bit for bit', async () => {
    const n = 16 ** 3;
    // a batch of 2: the tiny V-Net's bottom batch norm needs more than one value per channel
    const img = Float32Array.from({ length: 2 * n }, (_, i) => ((i % 16) > 4 && (i % 16) < 11 ? 1 : 0) + 0.1 * Math.sin(i));
    const lab = Float32Array.from({ length: 2 * n }, (_, i) => ((i % 16) > 4 && (i % 16) < 11 ? 1 : 0));
    // a scan of 2 windows of 16^3 at the model spacing (overlap 0.5)
    const hu = randomArr([24, 16, 16], 5, -300, 400);
    const vol = { data: hu.f32(), dims: [16, 16, 24] as [number, number, number], spacing: [2, 2, 3] as [number, number, number], affine: [], datatype: 16, header: null as never };
    const pre: models.VNetPreprocessing = { spacing: [2, 2, 3], intensity: { kind: 'ct-window', min: -100, max: 200 }, patch: [16, 16, 16], overlap: 0.5 };
    const config = { preset: 'tiny' as const, baseChannels: 2 };
    const baseline = live();

    const run = async (interleave: boolean) => {
      manualSeed(7);
      const trained = new models.VNet(config);
      const segmenter = new models.VNet(config);
      const trainer = new models.VNetTrainer(trained, { lr: 1e-2 });
      const images = tensor(img, [2, 1, 16, 16, 16]);
      const labels = tensor(lab, [2, 16, 16, 16]);
      let first: Promise<models.StepResult> | null = null;
      let startedAt = -1;
      let seg: models.SegmentResult;
      if (interleave) {
        seg = await models.segmentVolume(segmenter, vol, pre, {
          onProgress: (pr) => {
            if (pr.stage === 'windows' && pr.done === 1 && !first) {
              startedAt = pr.done;
              first = trainer.step(images, labels);
            }
          },
        });
      } else {
        first = trainer.step(images, labels);
        await first;
        seg = await models.segmentVolume(segmenter, vol, pre);
      }
      const losses = [(await first!).loss];
      // a second step on llvmpipe (Adam's state carried over; a V-Net step takes seconds on
      // SwiftShader), 199 more with the full counts: they leave live memory where the first left it
      const afterFirst = live();
      const t0 = performance.now();
      for (let s = 1; s < steps; s++) losses.push((await trainer.step(images, labels)).loss);
      const seconds = (performance.now() - t0) / 1000;
      const afterSteps = live();
      const weights = await readAll(trained.stateDict());
      trainer.optimizer.dispose();
      images.dispose();
      labels.dispose();
      trained.dispose();
      segmenter.dispose();
      return { losses, weights, labels: seg.labels, windows: seg.windows, startedAt, afterFirst, afterSteps, seconds };
    };
    const steps = trainingSteps(slow() ? 1 : 2);
    const seq = await run(false);
    const par = await run(true);
    expect(par.windows).toBe(2);
    expect(par.startedAt, 'the step started between windows').toBe(1);
    expect(par.losses.length).toBe(steps);
    for (const r of [seq, par]) expect(r.afterSteps, `live memory after steps 2 to ${steps}`).toEqual(r.afterFirst);
    if (steps > 1) console.log(`V-Net tiny: ${steps - 1} training steps after the first in ${seq.seconds.toFixed(1)} s: live tensors ${seq.afterFirst.tensors} -> ${seq.afterSteps.tensors}, bytes ${seq.afterFirst.bytes} -> ${seq.afterSteps.bytes}`);
    expect(par.losses.map((l, i) => Object.is(l, seq.losses[i])), `losses ${par.losses} vs ${seq.losses}`).toEqual(par.losses.map(() => true));
    expect(differing(seq.weights, par.weights), 'weights that differ').toEqual([]);
    sameBits(par.labels, seq.labels, 'segmentation labels');
    // another seed initialises other weights (so equal weights above are not a constant)
    manualSeed(8);
    const other = new models.VNet(config);
    manualSeed(7);
    const again = new models.VNet(config);
    const w8 = await readAll(other.stateDict());
    const w7 = await readAll(again.stateDict());
    // every convolution's weight (batch-norm and PReLU entries start constant)
    const convs = [...again.stateDict()].filter(([, t]) => t.ndim === 5).map(([k]) => k);
    expect(convs.length).toBeGreaterThan(10);
    const d = new Set(differing(w7, w8));
    expect(convs.filter((k) => !d.has(k)), 'convolution weights equal under seeds 7 and 8').toEqual([]);
    other.dispose();
    again.dispose();
    expect(live(), 'live memory after both runs').toEqual(baseline);
  }, timeout);

  it('repeated eval forward passes keep live memory at its baseline', async () => {
    const net = new models.VNet({ preset: 'tiny', baseChannels: 2 });
    net.eval();
    const x = tensor(Float32Array.from({ length: 16 ** 3 }, (_, i) => Math.sin(i * 0.1)), [1, 1, 16, 16, 16]);
    const pass = async () => {
      const y = noGrad(() => net.forward(x));
      await y.read();
      y.dispose();
    };
    await pass();
    const base = live();
    const N = passes(slow() ? 3 : 12);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await pass();
    const end = live();
    console.log(`V-Net tiny: ${N} forward passes in ${((performance.now() - t0) / 1000).toFixed(1)} s: live tensors ${base.tensors} -> ${end.tensors}, bytes ${base.bytes} -> ${end.bytes}`);
    expect(end).toEqual(base);
    x.dispose();
    net.dispose();
  }, timeout);
});

describe('TransUNet tiny', () => {
  it('repeated eval forward passes keep live memory at its baseline', async () => {
    manualSeed(5);
    const net = new TransUNet({ config: 'tiny' });
    net.eval();
    const S = net.imgSize;
    const x = tensor(Float32Array.from({ length: S * S }, (_, i) => Math.sin(i * 0.1)), [1, 1, S, S]);
    const pass = async () => {
      const y = noGrad(() => net.forward(x));
      await y.read();
      y.dispose();
    };
    await pass();
    const base = live();
    const N = passes(slow() ? 2 : 10);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await pass();
    const end = live();
    console.log(`TransUNet tiny: ${N} forward passes in ${((performance.now() - t0) / 1000).toFixed(1)} s: live tensors ${base.tensors} -> ${end.tensors}, bytes ${base.bytes} -> ${end.bytes}`);
    expect(end).toEqual(base);
    x.dispose();
    net.dispose();
  }, timeout);

  it('training steps (forward, losses, backward, SGD) keep live memory at its baseline', async () => {
    manualSeed(6);
    const net = new TransUNet({ config: 'tiny', numClasses: 3 });
    const S = net.imgSize;
    const steps = trainingSteps(slow() ? 2 : 3);
    const trainer = new TransUNetTrainer(net, { baseLr: 0.01, maxSteps: steps });
    const images = tensor(Float32Array.from({ length: S * S }, (_, i) => Math.sin(i * 0.1)), [1, 1, S, S]);
    const labels = tensor(Float32Array.from({ length: S * S }, (_, i) => (i % S < S / 3 ? 0 : i % S < (2 * S) / 3 ? 1 : 2)), [1, S, S]);
    const losses = [(await trainer.step(images, labels)).loss]; // allocates the momentum buffers
    const base = live();
    const t0 = performance.now();
    for (let s = 1; s < steps; s++) losses.push((await trainer.step(images, labels)).loss);
    const end = live();
    console.log(`TransUNet tiny: ${steps - 1} training steps after the first in ${((performance.now() - t0) / 1000).toFixed(1)} s: live tensors ${base.tensors} -> ${end.tensors}, bytes ${base.bytes} -> ${end.bytes}`);
    expect(losses.every(Number.isFinite), `losses ${losses}`).toBe(true);
    expect(end).toEqual(base);
    trainer.dispose();
    for (const t of [images, labels]) t.dispose();
    net.dispose();
  }, timeout);
});
