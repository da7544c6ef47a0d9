// Normalisation ops: forward vs the float64 reference and gradients (input, weight, bias) vs finite
// differences, for batch norm (training and eval, running-stat updates), group norm (one group, one
// group per channel, TransUNet's form), layer norm over the last dims, LayerNorm2d and weight
// standardisation; rows short (one invocation per row) and long (a workgroup per row).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { recordPicks, setKernelVariant } from '../../src/gpu/variants.js';
import { F, noGrad, ones, runtime, tensor, zeros, type Tensor } from '../../src/index.js';
import { checkOp, expectClose, expectStepLeavesNothing, held, ready, upload } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { randomArr } from '../reference/ndarray.js';
import * as ref from '../reference/norm.js';

beforeAll(ready);

describe('batchNorm', () => {
  for (const shape of [
    [2, 3, 4, 5, 3],
    [4, 2, 8, 9],
  ]) {
    it(`training with batch statistics ${JSON.stringify(shape)}`, () =>
      checkOp({
        name: 'batchNorm train',
        shapes: [shape, [shape[1]], [shape[1]]],
        gpu: (x, w, b) => F.batchNorm(x, zeros([shape[1]]), ones([shape[1]]), w, b, true, 0.1, 1e-5),
        ref: (x, w, b) => ref.batchNorm(x, null, null, w, b, true, 1e-5),
        tol: reductionTol(shape[0] * shape.slice(2).reduce((a, c) => a * c, 1)),
      }));
  }

  it('eval with running statistics', () =>
    checkOp({
      name: 'batchNorm eval',
      shapes: [[2, 3, 4, 5], [3], [3], [3], [3]],
      gpu: (x, w, b, rm, rv) => F.batchNorm(x, rm, rv, w, b, false, 0.1, 1e-5),
      ref: (x, w, b, rm, rv) => ref.batchNorm(x, rm, rv, w, b, false, 1e-5),
      domains: [[-1, 1], [-1, 1], [-1, 1], [-0.5, 0.5], [0.2, 2]],
      gradInputs: [0, 1, 2],
    }));

  it('updates running mean and (unbiased) variance with momentum, in place', async () => {
    const shape = [3, 4, 5, 6];
    const xa = randomArr(shape, 11, -2, 3);
    const rma = randomArr([4], 12, -1, 1);
    const rva = randomArr([4], 13, 0.5, 2);
    const x = upload(xa);
    const rm = upload(rma);
    const rv = upload(rva);
    const y = F.batchNorm(x, rm, rv, null, null, true, 0.3, 1e-5);
    const want = ref.batchNormRunning(xa, rma, rva, 0.3);
    const tol = reductionTol(90);
    expectClose(await rm.read(), want.mean.data, tol, 'batchNorm running_mean');
    expectClose(await rv.read(), want.var.data, tol, 'batchNorm running_var');
    // a second step moves them again from the updated values
    const y2 = F.batchNorm(x, rm, rv, null, null, true, 0.3, 1e-5);
    const want2 = ref.batchNormRunning(xa, want.mean, want.var, 0.3);
    expectClose(await rm.read(), want2.mean.data, tol, 'batchNorm running_mean, step 2');
    expectClose(await rv.read(), want2.var.data, tol, 'batchNorm running_var, step 2');
    for (const t of [x, rm, rv, y, y2]) t.dispose();
  });

  it('eval leaves the running statistics alone', async () => {
    const rm = tensor([0.1, -0.2], [2]);
    const rv = tensor([1.5, 0.5], [2]);
    const x = upload(randomArr([2, 2, 3], 5));
    F.batchNorm(x, rm, rv, null, null, false).dispose();
    expect([...(await rm.read())]).toEqual([Math.fround(0.1), Math.fround(-0.2)]);
    expect([...(await rv.read())]).toEqual([1.5, 0.5]);
  });
});

describe('groupNorm', () => {
  const cases: [string, number[], number][] = [
    ['3 groups of 2 channels', [2, 6, 5, 7], 3],
    ['one group per channel', [2, 4, 3, 5], 4],
    ['one group, long rows', [2, 4, 9, 8], 1],
    ['3d input', [1, 4, 3, 4, 5], 2],
  ];
  for (const [name, shape, G] of cases) {
    it(`${name} ${JSON.stringify(shape)}`, () =>
      checkOp({
        name: `groupNorm(${G})`,
        shapes: [shape, [shape[1]], [shape[1]]],
        gpu: (x, w, b) => F.groupNorm(x, G, w, b, 1e-6),
        ref: (x, w, b) => ref.groupNorm(x, G, w, b, 1e-6),
        tol: reductionTol((shape[1] / G) * shape.slice(2).reduce((a, c) => a * c, 1)),
      }));
  }
  it('without affine parameters', () =>
    checkOp({ name: 'groupNorm', shapes: [[2, 4, 5]], gpu: (x) => F.groupNorm(x, 2), ref: (x) => ref.groupNorm(x, 2, null, null) }));
});

describe('layerNorm', () => {
  it('over the last dim', () =>
    checkOp({
      name: 'layerNorm',
      shapes: [[3, 5, 7], [7], [7]],
      gpu: (x, w, b) => F.layerNorm(x, [7], w, b),
      ref: (x, w, b) => ref.layerNorm(x, 1, w, b),
      tol: reductionTol(7),
    }));
  it('over the last two dims, long rows, from a permuted view', () =>
    checkOp({
      name: 'layerNorm',
      shapes: [[2, 3, 4, 40], [4, 40], [4, 40]],
      gpu: (x, w, b) => F.layerNorm(x, [4, 40], w, b),
      ref: (x, w, b) => ref.layerNorm(x, 2, w, b),
      prepare: (t, i) => (i === 0 ? F.contiguous(F.permute(F.contiguous(F.permute(t, [1, 0, 2, 3])), [1, 0, 2, 3])) : t),
      tol: reductionTol(160),
    }));
  it('LayerNorm2d over the channels of NCHW', () =>
    checkOp({
      name: 'layerNorm2d',
      shapes: [[2, 6, 4, 5], [6], [6]],
      gpu: (x, w, b) => F.layerNorm2d(x, w, b),
      ref: (x, w, b) => ref.layerNorm2d(x, w, b),
      tol: reductionTol(6),
    }));
  it('from a narrowed view (non-zero offset)', () =>
    checkOp({
      name: 'layerNorm',
      shapes: [[4, 9]],
      gpu: (x) => F.layerNorm(F.narrow(x, 0, 1, 3), [9]),
      ref: (x) => ref.layerNorm(sliceRows(x, 1, 3), 1, null, null),
    }));
});

function sliceRows(x: import('../reference/ndarray.js').Arr, start: number, n: number) {
  const D = x.shape[1];
  return new (x.constructor as typeof import('../reference/ndarray.js').Arr)(x.data.slice(start * D, (start + n) * D), [n, D]);
}

describe('weight standardisation', () => {
  for (const shape of [
    [6, 3, 3, 3],
    [4, 16, 3, 3],
  ]) {
    it(`StdConv2d weights ${JSON.stringify(shape)}`, () =>
      checkOp({
        name: 'weightStandardize',
        shapes: [shape],
        gpu: (w) => F.weightStandardize(w, 1e-5),
        ref: (w) => ref.weightStandardize(w, 1e-5),
        tol: reductionTol(shape.slice(1).reduce((a, c) => a * c, 1)),
      }));
  }
});

// Each row kernel forced, at the row lengths the models normalise (a ViT's 768-wide tokens, SAM's
// 256-channel LayerNorm2d, StdConv2d's 3x3x128 weights, a group of 8 channels), through each
// specialisation of the element map (norm.wgsl's ELEMS: one run, E1 = 1, the general map).
describe('each row kernel at the models\' row lengths', () => {
  afterEach(() => setKernelVariant('norm', null));
  for (const variant of ['serial', 'workgroup'] as const) {
    it(`${variant}: layerNorm over 768, LayerNorm2d over 256 channels, weight standardisation over 1152, groupNorm`, async () => {
      setKernelVariant('norm', variant);
      const check = async (name: string, gpu: () => Tensor, want: import('../reference/ndarray.js').Arr, n: number) => {
        const { result: y, picks } = recordPicks(gpu);
        expect(picks.map((p) => p.variant), name).toEqual([variant]);
        expectClose(await y.read(), want.data, reductionTol(n), `${variant} ${name}`);
        y.dispose();
      };
      const x = randomArr([3, 768], 21, -2, 3);
      const w = randomArr([768], 22);
      const b = randomArr([768], 23);
      const [xt, wt, bt] = [x, w, b].map((a) => upload(a));
      await check('layerNorm', () => F.layerNorm(xt, [768], wt, bt), ref.layerNorm(x, 1, w, b), 768);
      const x2 = randomArr([1, 256, 2, 3], 24);
      const x2t = upload(x2);
      await check('layerNorm2d', () => F.layerNorm2d(x2t), ref.layerNorm2d(x2, null, null), 256);
      const ws = randomArr([2, 128, 3, 3], 25);
      const wst = upload(ws);
      await check('weightStandardize', () => F.weightStandardize(wst), ref.weightStandardize(ws, 1e-5), 1152);
      const g = randomArr([1, 16, 3, 4], 26);
      const gt = upload(g);
      await check('groupNorm', () => F.groupNorm(gt, 2), ref.groupNorm(g, 2, null, null), 96);
      for (const t of [xt, wt, bt, x2t, wst, gt]) t.dispose();
    });
  }
  it('the default rule: an invocation per row for many rows on CPU adapters, a workgroup per row elsewhere', () => {
    const x = upload(randomArr([256, 768], 27));
    const { result: y, picks } = recordPicks(() => noGrad(() => F.layerNorm(x, [768])));
    expect(picks[0].variant).toBe(runtime().adapterKind === 'cpu' ? 'serial' : 'workgroup');
    for (const t of [x, y]) t.dispose();
  });
});

describe('rows split into chunks (few long rows)', () => {
  beforeAll(() => setKernelVariant('norm', 'chunked', { chunk: 50 }));
  afterAll(() => setKernelVariant('norm', null));
  it('batchNorm training, a last chunk shorter than the others', () =>
    checkOp({
      name: 'batchNorm train (chunks)',
      shapes: [[2, 3, 4, 5, 3], [3], [3]],
      gpu: (x, w, b) => F.batchNorm(x, zeros([3]), ones([3]), w, b, true, 0.1, 1e-5),
      ref: (x, w, b) => ref.batchNorm(x, null, null, w, b, true, 1e-5),
      domains: [[2, 4], [-1, 1], [-1, 1]],
      tol: reductionTol(120),
    }));
  it('batchNorm eval', () =>
    checkOp({
      name: 'batchNorm eval (chunks)',
      shapes: [[2, 3, 4, 9], [3], [3], [3], [3]],
      gpu: (x, w, b, rm, rv) => F.batchNorm(x, rm, rv, w, b, false, 0.1, 1e-5),
      ref: (x, w, b, rm, rv) => ref.batchNorm(x, rm, rv, w, b, false, 1e-5),
      domains: [[-1, 1], [-1, 1], [-1, 1], [-0.5, 0.5], [0.2, 2]],
      gradInputs: [0, 1, 2],
    }));
  it('running statistics', async () => {
    const xa = randomArr([3, 2, 7, 5], 21, -1, 2);
    const rma = randomArr([2], 22);
    const rva = randomArr([2], 23, 0.5, 2);
    const rm = upload(rma);
    const rv = upload(rva);
    F.batchNorm(upload(xa), rm, rv, null, null, true, 0.1, 1e-5).dispose();
    const want = ref.batchNormRunning(xa, rma, rva, 0.1);
    expectClose(await rm.read(), want.mean.data, reductionTol(105), 'running_mean (chunks)');
    expectClose(await rv.read(), want.var.data, reductionTol(105), 'running_var (chunks)');
  });
  it('groupNorm with one group', () =>
    checkOp({
      name: 'groupNorm(1) (chunks)',
      shapes: [[2, 4, 5, 6], [4], [4]],
      gpu: (x, w, b) => F.groupNorm(x, 1, w, b),
      ref: (x, w, b) => ref.groupNorm(x, 1, w, b),
      tol: reductionTol(120),
    }));
});

describe('rows too long for one workgroup (past llvmpipe\'s 65535 loop passes per invocation)', () => {
  // forcing the 'workgroup' variant turns off the split for few rows, which stands for a norm over 128 or
  // more rows this long (too big for a test): the row is still split, as one workgroup would need
  // 2 x 34k loop passes per invocation (shaders/norm.wgsl).
  beforeAll(() => setKernelVariant('norm', 'workgroup'));
  afterAll(() => setKernelVariant('norm', null));
  it('layerNorm over a row of 2.2M elements, forward and backward', async () => {
    // Finite differences of a reference this long are too slow: dx is checked against its closed
    // form, rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * weight, in float64.
    const n = 2_200_000;
    const [xa, wa, ba, cot] = [randomArr([1, n], 41), randomArr([n], 42), randomArr([n], 43), randomArr([1, n], 44)];
    const x = upload(xa, true);
    const y = F.layerNorm(x, [n], upload(wa), upload(ba));
    expectClose(await y.read(), ref.layerNorm(xa, 1, wa, ba).data, reductionTol(n), 'layerNorm([1, 2200000]) forward');
    y.backward(upload(cot));
    let mean = 0;
    for (const v of xa.data) mean += v / n;
    let v2 = 0;
    for (const v of xa.data) v2 += (v - mean) ** 2 / n;
    const rstd = 1 / Math.sqrt(v2 + 1e-5);
    let mg = 0;
    let mgx = 0;
    for (let i = 0; i < n; i++) {
      const g = cot.data[i] * wa.data[i];
      mg += g / n;
      mgx += (g * (xa.data[i] - mean) * rstd) / n;
    }
    const dx = xa.data.map((v, i) => rstd * (cot.data[i] * wa.data[i] - mg - (v - mean) * rstd * mgx));
    expectClose(await x.grad!.read(), dx, reductionTol(n), 'layerNorm([1, 2200000]) backward');
  });
});

describe('long rows at the default split, mean far from zero', () => {
  // Values 40 +- 1: the statistics are shifted sums in one workgroup reduction, whose cancellation
  // this bounds; sizes reach the workgroup kernel ([1, 3, 40, 50]: rows of 2000) and the default
  // chunking (rows of 2 * 24 * 48 * 48 = 110592 in 27 chunks of 4096, on CPU adapters 2 of 65536).
  for (const shape of [
    [1, 3, 40, 50],
    [2, 2, 24, 48, 48],
  ]) {
    it(`batchNorm training and running statistics ${JSON.stringify(shape)}`, async () => {
      const C = shape[1];
      const xa = randomArr(shape, 31, 39, 41);
      const rma = randomArr([C], 32);
      const rva = randomArr([C], 33, 0.5, 2);
      const rm = upload(rma);
      const rv = upload(rva);
      const y = F.batchNorm(upload(xa), rm, rv, null, null, true, 0.1, 1e-5);
      const n = xa.size / C;
      expectClose(await y.read(), ref.batchNorm(xa, null, null, null, null, true, 1e-5).data, { atol: 1e-4, rtol: 0 }, 'normalised');
      const want = ref.batchNormRunning(xa, rma, rva, 0.1);
      expectClose(await rm.read(), want.mean.data, reductionTol(n), 'running_mean');
      expectClose(await rv.read(), want.var.data, { atol: 1e-5, rtol: 1e-4 }, 'running_var');
      y.dispose();
    });
  }
});

describe('norm and pool memory', () => {
  it('forwards without gradients free every temporary', async () => {
    const x = upload(randomArr([2, 4, 6, 5], 4));
    const rm = zeros([4]);
    const rv = ones([4]);
    const run = () =>
      noGrad(() => {
        F.batchNorm(x, rm, rv, null, null, true).dispose();
        setKernelVariant('norm', 'chunked', { chunk: 16 });
        F.batchNorm(x, rm, rv, null, null, true).dispose();
        setKernelVariant('norm', null);
        F.batchNorm(x, rm, rv, null, null, false).dispose();
        F.groupNorm(x, 2).dispose();
        F.layerNorm(x, [5]).dispose();
        F.layerNorm2d(x).dispose();
        F.maxPool2d(x, 2).dispose();
        F.avgPool2d(x, 2).dispose();
      });
    run();
    await runtime().sync();
    const before = held().tensors;
    run();
    await runtime().sync();
    expect(held().tensors).toBe(before);
    for (const t of [x, rm, rv]) t.dispose();
  });

  it('a training step through every norm leaves nothing behind', async () => {
    const x = upload(randomArr([2, 4, 6, 5], 4), true);
    const w = upload(randomArr([4], 5), true);
    const b = upload(randomArr([4], 6), true);
    const w5 = upload(randomArr([5], 7), true);
    const b5 = upload(randomArr([5], 8), true);
    const cw = upload(randomArr([3, 4, 3, 3], 9), true);
    const rm = zeros([4]);
    const rv = ones([4]);
    const leaves = [x, w, b, w5, b5, cw];
    await expectStepLeavesNothing(async () => {
      // a permuted input and a narrowed weight (copied to dense temporaries inside)
      const xp = x.transpose(2, 3);
      const xpp = xp.transpose(2, 3);
      const wn = w.narrow(0, 1, 2);
      const bn = b.narrow(0, 1, 2);
      const ys: Tensor[] = [F.batchNorm(xpp, rm, rv, w, b, true), F.batchNorm(x, rm, rv, w, b, false), F.groupNorm(xp, 2, w, b), F.layerNorm(x, [5], w5, b5), F.layerNorm2d(x, w, b), F.weightStandardize(cw)];
      const x2 = F.narrow(x, 1, 0, 2);
      ys.push(F.groupNorm(x2, 1, wn, bn));
      const sums = ys.map((y) => y.sum());
      const adds: Tensor[] = [];
      let total = sums[0];
      for (const t of sums.slice(1)) adds.push((total = total.add(t)));
      total.backward();
      for (const t of leaves) await t.grad!.read();
      for (const t of [xp, xpp, wn, bn, x2, ...ys, ...sums, ...adds]) t.dispose();
      for (const t of leaves) t.zeroGrad();
    });
    for (const t of leaves) {
      expect(t.graphUses).toBe(0);
      t.dispose();
    }
    rm.dispose();
    rv.dispose();
  });
});

describe('norm errors', () => {
  it('names the op and shapes', () => {
    const x = upload(randomArr([2, 6, 3], 1));
    expect(() => F.groupNorm(x, 4)).toThrow(/groupNorm\(\[2, 6, 3\], groups=4\).*divide/);
    expect(() => F.layerNorm(x, [6])).toThrow(/layerNorm\(\[2, 6, 3\], \[6\]\)/);
    x.dispose();
  });
});

export type { Tensor };
