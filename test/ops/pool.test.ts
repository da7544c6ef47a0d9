// Pooling: forward vs the float64 reference and gradients vs finite differences, TransUNet's
// 3x3 stride-2 max pool (with and without padding), overlapping and non-overlapping windows,
// ceil mode, average pooling with and without counting the padding; the argmax indices.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/index.js';
import { setTileBudget } from '../../src/ops/loop-budget.js';
import { checkOp, expectClose, expectStepLeavesNothing, ready, upload } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { Arr, randomArr } from '../reference/ndarray.js';
import { avgPool2d as refAvg, maxPool2d as refMax } from '../reference/conv.js';

beforeAll(ready);

describe('maxPool2d', () => {
  const cases: [string, number[], number, { stride?: number; padding?: number; ceilMode?: boolean }][] = [
    ['ResNet stem 3x3 s2 p1', [2, 3, 9, 11], 3, { stride: 2, padding: 1 }],
    ['TransUNet 3x3 s2 p0', [1, 4, 11, 10], 3, { stride: 2 }],
    ['2x2 non-overlapping, odd size', [2, 2, 7, 9], 2, {}],
    ['3x3 s2 ceil mode', [1, 2, 8, 7], 3, { stride: 2, ceilMode: true }],
  ];
  for (const [name, shape, k, o] of cases) {
    it(`${name} ${JSON.stringify(shape)}`, () =>
      checkOp({
        name: 'maxPool2d',
        shapes: [shape],
        gpu: (x) => F.maxPool2d(x, k, o),
        ref: (x) => refMax(x, { kernel: [k, k], stride: o.stride ? [o.stride, o.stride] : undefined, padding: o.padding ? [o.padding, o.padding] : undefined, ceilMode: o.ceilMode }),
      }));
  }
  it('returns the argmax as h*W + w within each plane', async () => {
    const xa = randomArr([1, 2, 5, 6], 3);
    const [y, idx] = F.maxPool2dWithIndices(upload(xa), 2, { stride: 2 });
    const ids = await idx.read();
    const vals = await y.read();
    for (let o = 0; o < ids.length; o++) {
      const plane = Math.floor(o / 6); // 2x3 outputs per 5x6 plane
      expect(Math.fround(xa.data[plane * 30 + ids[o]]), `index ${o}`).toBe(vals[o]);
    }
  });
});

describe('pooling memory', () => {
  it('maxPool2dWithIndices: the caller may dispose the indices before backward', () =>
    checkOp({
      name: 'maxPool2dWithIndices',
      shapes: [[1, 2, 5, 7]],
      gpu: (x) => {
        const [y, idx] = F.maxPool2dWithIndices(x, 2);
        idx.dispose();
        return y;
      },
      ref: (x) => refMax(x, { kernel: [2, 2] }),
    }));
  it('a training step through maxPool2d, maxPool2dWithIndices and avgPool2d leaves nothing behind', async () => {
    const x = upload(randomArr([1, 2, 6, 7], 5), true);
    await expectStepLeavesNothing(async () => {
      const a = F.maxPool2d(x, 3, { stride: 2, padding: 1 });
      const [b, idx] = F.maxPool2dWithIndices(x, 2);
      const c = F.avgPool2d(x, 2);
      const sa = a.sum();
      const sb = b.sum();
      const sc = c.sum();
      const s1 = sa.add(sb);
      const loss = s1.add(sc);
      loss.backward();
      await x.grad!.read();
      for (const t of [a, b, idx, c, sa, sb, sc, s1, loss]) t.dispose();
      x.zeroGrad();
    });
    expect(x.graphUses).toBe(0);
    x.dispose();
  });
});

describe('avgPool2d', () => {
  const cases: [string, number[], number, { stride?: number; padding?: number; ceilMode?: boolean; countIncludePad?: boolean }][] = [
    ['2x2', [2, 3, 6, 7], 2, {}],
    ['3x3 s2 p1 counting padding', [1, 2, 7, 9], 3, { stride: 2, padding: 1 }],
    ['3x3 s2 p1 not counting padding', [1, 2, 7, 9], 3, { stride: 2, padding: 1, countIncludePad: false }],
    ['3x3 s2 ceil mode', [1, 2, 8, 7], 3, { stride: 2, ceilMode: true, padding: 1 }],
  ];
  for (const [name, shape, k, o] of cases) {
    it(`${name} ${JSON.stringify(shape)}`, () =>
      checkOp({
        name: 'avgPool2d',
        shapes: [shape],
        gpu: (x) => F.avgPool2d(x, k, o),
        ref: (x) =>
          refAvg(x, {
            kernel: [k, k],
            stride: o.stride ? [o.stride, o.stride] : undefined,
            padding: o.padding ? [o.padding, o.padding] : undefined,
            ceilMode: o.ceilMode,
            countIncludePad: o.countIncludePad,
          }),
        tol: reductionTol(k * k),
      }));
  }
});

// Windows past llvmpipe's 65535 loop passes per invocation (shaders/pool.wgsl) run as several
// launches over parts of the window, each resuming from the last.
describe('pooling windows split into launches', () => {
  afterEach(() => setTileBudget(null));
  it('maxPool2d over whole 300x300 planes, the maxima late in the window; indices and backward', async () => {
    const xa = randomArr([1, 2, 300, 300], 51);
    xa.data[290 * 300 + 17] = 3; // plane 0: past the first 65535 taps
    xa.data[90000 + 299 * 300 + 299] = 3; // plane 1: the last tap
    const x = upload(xa, true);
    const [y, idx] = F.maxPool2dWithIndices(x, 300);
    expect([...(await y.read())]).toEqual([3, 3]);
    expect([...(await idx.read())]).toEqual([290 * 300 + 17, 299 * 300 + 299]);
    y.backward(upload(Arr.from([0.5, -2], [1, 2, 1, 1])));
    const g = await x.grad!.read();
    const want = new Float64Array(xa.size);
    want[290 * 300 + 17] = 0.5;
    want[90000 + 299 * 300 + 299] = -2;
    expectClose(g, want, { rtol: 0, atol: 0 }, 'maxPool2d backward');
  });
  it('avgPool2d over whole 300x300 planes', () =>
    checkOp({ name: 'avgPool2d(300)', shapes: [[1, 2, 300, 300]], gpu: (x) => F.avgPool2d(x, 300), ref: (x) => refAvg(x, { kernel: [300, 300] }), tol: reductionTol(90000) }));
  // The backwards' gathers only pass the limit at sizes too big for a test: with a budget of 4 loop
  // passes every entry runs as many launches, and must give the results of one.
  for (const [name, o] of [
    ['5x5 s1 p2', { stride: 1, padding: 2 }],
    ['5x5 s2 ceil mode', { stride: 2, ceilMode: true }],
  ] as [string, { stride: number; padding?: number; ceilMode?: boolean }][]) {
    it(`maxPool2d and avgPool2d ${name}, forward and backward, split into launches of 4 loop passes`, async () => {
      const opts = { kernel: [5, 5], stride: [o.stride, o.stride], padding: o.padding ? [o.padding, o.padding] : undefined, ceilMode: o.ceilMode };
      setTileBudget(4);
      await checkOp({ name: 'maxPool2d (split)', shapes: [[1, 2, 9, 11]], gpu: (x) => F.maxPool2d(x, 5, o), ref: (x) => refMax(x, opts) });
      await checkOp({ name: 'avgPool2d (split)', shapes: [[1, 2, 9, 11]], gpu: (x) => F.avgPool2d(x, 5, o), ref: (x) => refAvg(x, opts), tol: reductionTol(25) });
    });
  }
  it('ties and padding keep the first maximum, as in one launch', async () => {
    const xa = new Arr(new Float64Array(2 * 8 * 8).map((_, i) => Math.floor(i / 7) % 3), [1, 2, 8, 8]);
    const run = async () => {
      const [y, idx] = F.maxPool2dWithIndices(upload(xa), 4, { stride: 1, padding: 2, dilation: 1 });
      return [[...(await y.read())], [...(await idx.read())]];
    };
    const one = await run();
    setTileBudget(4);
    expect(await run()).toEqual(one);
  });
});
