// Losses: diceLoss (V-Net, MONAI and TransUNet forms), crossEntropy (class weights, ignoreIndex,
// [N, C], 2D and 3D maps, probability targets), binaryCrossEntropyWithLogits (posWeight, large
// logits) and oneHot; values vs float64 references and gradients vs their finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import { F, memoryStats, tensor, type Tensor } from '../../src/index.js';
import { checkOp, expectStepLeavesNothing, ready } from '../helpers.js';
import { Arr, size } from '../reference/ndarray.js';
import { bceWithLogitsRef, crossEntropyProbRef, crossEntropyRef, diceRef, oneHotDim1Ref } from '../reference/loss.js';
import { reductionTol } from '../tolerance.js';

beforeAll(ready);

/** Deterministic integer labels in [0, C), with every `ignoreEvery`-th set to `ignore`. */
function labels(shape: number[], C: number, seed: number, ignore?: number, ignoreEvery = 5): Arr {
  let s = seed;
  const data = new Float64Array(size(shape));
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = ignore !== undefined && i % ignoreEvery === 2 ? ignore : (s >>> 16) % C;
  }
  return new Arr(data, shape);
}

const up = (a: Arr) => tensor(a.f32(), a.shape);

describe('crossEntropy', () => {
  const cases: { logits: number[]; weight?: number[]; ignoreIndex?: number; reduction?: 'mean' | 'sum' | 'none' }[] = [
    { logits: [7, 5] },
    { logits: [9, 3], reduction: 'sum' },
    { logits: [2, 4, 5, 7], weight: [0.5, 2, 1, 0.25], ignoreIndex: -100 },
    { logits: [2, 4, 5, 7], reduction: 'none', ignoreIndex: 3 },
    { logits: [2, 3, 3, 4, 5], weight: [1, 3, 0.5], ignoreIndex: 0, reduction: 'mean' },
    { logits: [1, 3, 2, 3, 5], weight: [1, 3, 0.5], reduction: 'sum' },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c)}`, () => {
      const C = c.logits[1];
      const tShape = [c.logits[0], ...c.logits.slice(2)];
      const ignoreIndex = c.ignoreIndex ?? -100;
      const t = labels(tShape, C, 11, c.ignoreIndex);
      const tt = up(t);
      const w = c.weight ? tensor(c.weight, [C]) : null;
      const reduction = c.reduction ?? 'mean';
      return checkOp({
        name: 'crossEntropy',
        shapes: [c.logits],
        domains: [[-3, 3]],
        gpu: (x) => F.crossEntropy(x, tt, { weight: w, ignoreIndex: c.ignoreIndex, reduction }),
        ref: (x) => crossEntropyRef(x, t, { weight: c.weight, ignoreIndex, reduction }),
        tol: reductionTol(size(c.logits)),
      });
    });
  }
  it('class-probability targets', () =>
    checkOp({
      name: 'crossEntropy(probabilities)',
      shapes: [[3, 4, 5], [3, 4, 5]],
      domains: [[-3, 3], [0, 1]],
      gpu: (x, t) => F.crossEntropy(x, t),
      ref: (x, t) => crossEntropyProbRef(x, t, 'mean'),
      gradInputs: [0, 1],
      tol: reductionTol(60),
    }));
  it('refuses a target of the wrong shape', () => {
    const x = tensor(new Float32Array(24), [2, 3, 4]);
    const t = tensor(new Float32Array(6), [2, 3]);
    expect(() => F.crossEntropy(x, t)).toThrow(/\[2, 3\].*\[2, 4\]/);
  });
});

describe('diceLoss', () => {
  const base = { smoothNr: 0, smoothDr: 0, squaredPred: true, batch: false, includeBackground: true, reduction: 'mean' as const };
  it("V-Net's form by default, index targets, 2D map", () => {
    const t = labels([2, 5, 7], 3, 5);
    const tt = up(t);
    return checkOp({
      name: 'diceLoss',
      shapes: [[2, 3, 5, 7]],
      domains: [[0.05, 1]],
      gpu: (p) => F.diceLoss(p, tt),
      ref: (p) => diceRef(p, oneHotDim1Ref(t, 3), base),
      tol: reductionTol(35),
    });
  });
  it("MONAI's squaredPred=false with smoothNr/smoothDr, batch, 3D map, [N, 1, ...] targets, reduction none", () => {
    const t = labels([2, 1, 3, 4, 5], 4, 9);
    const tt = up(t);
    return checkOp({
      name: 'diceLoss(MONAI)',
      shapes: [[2, 4, 3, 4, 5]],
      domains: [[0, 1]],
      gpu: (p) => F.diceLoss(p, tt, { squaredPred: false, smoothNr: 1e-5, smoothDr: 1e-5, batch: true, reduction: 'none' }),
      ref: (p) => diceRef(p, oneHotDim1Ref(t.reshape([2, 3, 4, 5]), 4), { ...base, squaredPred: false, smoothNr: 1e-5, smoothDr: 1e-5, batch: true, reduction: 'none' }),
      tol: reductionTol(120),
    });
  });
  it("TransUNet's form (smooth 1e-5, batch, class weights) after a softmax, without background", () => {
    const t = labels([2, 6, 5], 4, 3);
    const tt = up(t);
    const softmaxRef = (x: Arr) => {
      const out = Arr.zeros(x.shape);
      const [N, C] = x.shape;
      const S = size(x.shape.slice(2));
      for (let n = 0; n < N; n++)
        for (let s = 0; s < S; s++) {
          let z = 0;
          for (let c = 0; c < C; c++) z += Math.exp(x.data[(n * C + c) * S + s]);
          for (let c = 0; c < C; c++) out.data[(n * C + c) * S + s] = Math.exp(x.data[(n * C + c) * S + s]) / z;
        }
      return out;
    };
    return checkOp({
      name: 'diceLoss(TransUNet)',
      shapes: [[2, 4, 6, 5]],
      gpu: (x) => F.diceLoss(F.softmax(x, 1), tt, { smooth: 1e-5, batch: true, weight: [1, 2, 0.5], includeBackground: false }),
      ref: (x) => diceRef(softmaxRef(x), oneHotDim1Ref(t, 4), { ...base, smoothNr: 1e-5, smoothDr: 1e-5, batch: true, weight: [1, 2, 0.5], includeBackground: false }),
      tol: reductionTol(60),
    });
  });
  it('soft targets of the probabilities shape, gradients to both, reduction sum', () =>
    checkOp({
      name: 'diceLoss(soft)',
      shapes: [[3, 2, 7, 3], [3, 2, 7, 3]],
      domains: [[0.05, 1], [0, 1]],
      gpu: (p, g) => F.diceLoss(p, g, { smooth: 1, reduction: 'sum' }),
      ref: (p, g) => diceRef(p, g, { ...base, smoothNr: 1, smoothDr: 1, reduction: 'sum' }),
      tol: reductionTol(21),
    }));
});

describe('binaryCrossEntropyWithLogits', () => {
  it('mean, gradients to logits and targets', () =>
    checkOp({
      name: 'bceWithLogits',
      shapes: [[4, 5, 6], [4, 5, 6]],
      domains: [[-4, 4], [0, 1]],
      gpu: (x, t) => F.binaryCrossEntropyWithLogits(x, t),
      ref: (x, t) => bceWithLogitsRef(x, t, { reduction: 'mean' }),
      gradInputs: [0, 1],
      tol: reductionTol(120),
    }));
  it('posWeight and weight per class, large logits (stable form), sum', () => {
    const pw = [0.5, 3, 1, 2, 7];
    const w = [1, 0.5, 2, 1, 0.25];
    const pwt = tensor(pw, [5]);
    const wt = tensor(w, [5]);
    return checkOp({
      name: 'bceWithLogits(posWeight)',
      shapes: [[3, 7, 5], [3, 7, 5]],
      domains: [[-60, 60], [0, 1]],
      gpu: (x, t) => F.binaryCrossEntropyWithLogits(x, t, { posWeight: pwt, weight: wt, reduction: 'sum' }),
      ref: (x, t) => bceWithLogitsRef(x, t, { posWeight: pw, weight: w, reduction: 'sum' }),
      gradInputs: [0, 1],
      tol: reductionTol(105),
    });
  });
  it("reduction 'none' on a 2D map", () =>
    checkOp({
      name: 'bceWithLogits(none)',
      shapes: [[2, 1, 5, 7], [2, 1, 5, 7]],
      domains: [[-5, 5], [0, 1]],
      gpu: (x, t) => F.binaryCrossEntropyWithLogits(x, t, { reduction: 'none' }),
      ref: (x, t) => bceWithLogitsRef(x, t, { reduction: 'none' }),
      gradInputs: [0],
    }));
});

describe('oneHot', () => {
  it('matches F.one_hot (last dim, f32)', async () => {
    const t = labels([3, 4, 5], 6, 21);
    const y = F.oneHot(up(t), 6) as Tensor;
    expect(y.shape).toEqual([3, 4, 5, 6]);
    const got = await y.read();
    const want = new Float64Array(t.size * 6);
    for (let i = 0; i < t.size; i++) want[i * 6 + t.data[i]] = 1;
    expect([...got]).toEqual([...want]);
  });
});

describe('memory', () => {
  it('frees every intermediate when no gradient is recorded', async () => {
    const x = tensor(new Float32Array(2 * 3 * 4 * 5).map((_, i) => Math.sin(i)), [2, 3, 4, 5]);
    const p = F.softmax(x, 1);
    const lab = up(labels([2, 4, 5], 3, 1, -100));
    const w = tensor([1, 2, 3], [3]);
    const tgt = tensor(new Float32Array(120).map((_, i) => i % 2), [2, 3, 4, 5]);
    const pw = tensor([1, 2, 3, 4, 5], [5]);
    await p.read();
    const before = memoryStats().liveStorages;
    const losses = [
      F.diceLoss(p, lab, { weight: [2, 3], includeBackground: false, batch: true }),
      F.diceLoss(p, tgt, { reduction: 'none' }),
      F.crossEntropy(x, lab, { weight: w }),
      F.crossEntropy(x, lab, { reduction: 'none' }),
      F.crossEntropy(x, p),
      F.binaryCrossEntropyWithLogits(x, tgt, { posWeight: pw, weight: pw }),
      F.binaryCrossEntropyWithLogits(x, tgt, { reduction: 'none' }),
    ];
    expect(memoryStats().liveStorages - before).toBe(losses.length);
    for (const l of losses) l.dispose();
    expect(memoryStats().liveStorages).toBe(before);
  });
  it('a training step through every loss leaves nothing behind', async () => {
    const x = tensor(new Float32Array(2 * 3 * 4 * 5).map((_, i) => Math.sin(i)), [2, 3, 4, 5], { requiresGrad: true });
    const lab = up(labels([2, 4, 5], 3, 1, -100));
    const w = tensor([1, 2, 3], [3]);
    const tgt = tensor(new Float32Array(120).map((_, i) => i % 2), [2, 3, 4, 5]);
    const pw = tensor([1, 2, 3, 4, 5], [5]);
    await expectStepLeavesNothing(async () => {
      const p = F.softmax(x, 1);
      const losses = [
        F.diceLoss(p, lab, { weight: [2, 3], includeBackground: false, batch: true }),
        F.diceLoss(p, tgt, { reduction: 'sum' }),
        F.crossEntropy(x, lab, { weight: w }),
        F.crossEntropy(x, p),
        F.binaryCrossEntropyWithLogits(x, tgt, { posWeight: pw, weight: pw }),
      ];
      const sums: Tensor[] = [];
      let total = losses[0];
      for (const l of losses.slice(1)) sums.push((total = total.add(l)));
      total.backward();
      await x.grad!.read();
      for (const t of [p, ...losses, ...sums]) t.dispose();
      x.zeroGrad();
    });
    expect(x.graphUses).toBe(0);
    for (const t of [x, lab, w, tgt, pw]) t.dispose();
  });
});
