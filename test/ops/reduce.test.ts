// Reductions and softmax: forward vs the float64 reference, gradients vs finite differences,
// over single dims, several dims, all dims, keepdim, strided inputs and long rows.
import { beforeAll, describe, expect, it } from 'vitest';
import { F, tensor } from '../../src/index.js';
import { checkOp, expectClose, expectStepLeavesNothing, ready, upload } from '../helpers.js';
import { amax, amin, argmax, cat, mean, permute, softmax, sum, variance } from '../reference/ops.js';
import { Arr, randomArr } from '../reference/ndarray.js';
import { reductionTol } from '../tolerance.js';

beforeAll(ready);

describe('sum / mean / var / max / min', () => {
  const shape = [37, 53, 29];
  const dimsCases: [number[] | null, boolean][] = [
    [[1], false],
    [[0, 2], true],
    [[-1], false],
    [null, false],
  ];
  for (const [dims, keepdim] of dimsCases) {
    const label = `dims=${JSON.stringify(dims)} keepdim=${keepdim}`;
    const K = dims ? dims.reduce((k, d) => k * shape[d < 0 ? d + 3 : d], 1) : 37 * 53 * 29;
    it(`sum ${label}`, () => checkOp({ name: 'sum', shapes: [shape], gpu: (x) => F.sum(x, dims, keepdim), ref: (a) => sum(a, dims, keepdim), tol: reductionTol(K) }));
    it(`mean ${label}`, () => checkOp({ name: 'mean', shapes: [shape], gpu: (x) => F.mean(x, dims, keepdim), ref: (a) => mean(a, dims, keepdim), tol: reductionTol(K) }));
    it(`var ${label}`, () =>
      checkOp({ name: 'var', shapes: [shape], gpu: (x) => F.var(x, dims, { keepdim }), ref: (a) => variance(a, dims, keepdim), tol: reductionTol(K) }));
  }
  it('var with correction 0 over a long row (workgroup kernel)', () =>
    checkOp({ name: 'var', shapes: [[3, 3000]], gpu: (x) => F.var(x, 1, { correction: 0 }), ref: (a) => variance(a, [1], false, 0), tol: reductionTol(3000) }));
  it('sum over a long row (workgroup kernel) of a transposed view', () =>
    checkOp({
      name: 'sum(transposed)',
      shapes: [[1000, 5]],
      prepare: (t) => t.transpose(0, 1),
      gpu: (x) => F.sum(x, 1),
      ref: (a) => sum(a, [0]),
      tol: reductionTol(1000),
    }));
  it('max / min over dims (ties split the gradient like torch.amax)', async () => {
    await checkOp({ name: 'max', shapes: [[7, 11, 5]], gpu: (x) => F.max(x, [0, 2]), ref: (a) => amax(a, [0, 2]) });
    await checkOp({ name: 'min', shapes: [[7, 11, 5]], gpu: (x) => F.min(x, 1, true), ref: (a) => amin(a, [1], true) });
    const x = tensor([1, 3, 3, 2], [4], { requiresGrad: true });
    x.max().backward();
    expect([...(await x.grad!.read())]).toEqual([0, 0.5, 0.5, 0]);
  });
  it('max/argmax of a row of -inf is -inf at index 0, and its gradient is finite', async () => {
    const x = tensor([-Infinity, -Infinity, -Infinity, 1, -Infinity, 2], [2, 3], { requiresGrad: true });
    expect([...(await x.max(1).read())]).toEqual([-Infinity, 2]);
    expect([...(await x.argmax(1).read())]).toEqual([0, 2]);
    expect([...(await x.min(1).read())]).toEqual([-Infinity, -Infinity]);
    x.max(1).sum().backward();
    const g = await x.grad!.read();
    [1 / 3, 1 / 3, 1 / 3, 0, 0, 1].forEach((v, i) => expect(g[i]).toBeCloseTo(v, 6));
  });
  it('argmax along a dim and over all elements, first index on ties', async () => {
    const a = randomArr([13, 17, 3], 5);
    const t = upload(a);
    expect([...(await F.argmax(t, 1).read())]).toEqual([...argmax(a, 1).data]);
    expect(await F.argmax(t).item()).toBe(argmax(a.reshape([a.size]), 0).data[0]);
    expect([...(await tensor([2, 5, 5, 1]).argmax(0, true).read())]).toEqual([1]);
  });
  // the kernel merges adjacent dims that memory walks as one: here the last two of each view merge
  // and the first two (swapped) must not, so outputs and flat argmax indices keep the view's order
  it('sum and argmax of a permuted view, where only some adjacent dims can be merged', async () => {
    await checkOp({
      name: 'sum(permuted)',
      shapes: [[3, 4, 5, 6]],
      prepare: (t) => t.permute(1, 0, 2, 3),
      gpu: (x) => F.sum(x, [2, 3]),
      ref: (a) => sum(permute(a, [1, 0, 2, 3]), [2, 3]),
      tol: reductionTol(30),
    });
    const a = randomArr([3, 4, 5, 6], 11);
    a.data[1 * 120 + 7] = 10; // the maximum at x[1, 0, 1, 1]: flat index 37 in the view, 127 in memory
    const p = permute(a, [1, 0, 2, 3]);
    const t = upload(a);
    const v = t.permute(1, 0, 2, 3);
    expect(argmax(p.reshape([p.size]), 0).data[0]).toBe(37);
    expect(await F.argmax(v).item()).toBe(37);
    expect([...(await F.argmax(v, 0).read())]).toEqual([...argmax(p, 0).data]);
    t.dispose();
  });
  it('argmax and argmin over all elements of a tensor that requires grad leave no graph behind', async () => {
    const x = upload(randomArr([3, 5], 8), true);
    await expectStepLeavesNothing(async () => {
      const ia = F.argmax(x);
      const ib = F.argmin(x);
      await ia.read();
      await ib.read();
      ia.dispose();
      ib.dispose();
    });
    expect(x.graphUses).toBe(0);
    x.dispose();
  });
});

// Mesa's llvmpipe leaves every loop of an invocation after 65535 loop passes in total (see
// shaders/reduce.wgsl); these rows would need more than that in one invocation.
describe('reductions past llvmpipe\'s loop-pass limit', () => {
  it('sum and mean over a [1, 1, 64, 128, 128] volume (rows split into chunks)', async () => {
    const shape = [1, 1, 64, 128, 128];
    await checkOp({ name: 'sum', shapes: [shape], gpu: (x) => F.sum(x), ref: (a) => sum(a), tol: reductionTol(64 * 128 * 128), gradInputs: [] });
    await checkOp({ name: 'mean', shapes: [shape], gpu: (x) => F.mean(x, [2, 3, 4], true), ref: (a) => mean(a, [2, 3, 4], true), tol: reductionTol(64 * 128 * 128), gradInputs: [] });
  });
  it('max, min and argmax over 1.5M elements of a 1-d row', async () => {
    const n = 1_500_000;
    await checkOp({ name: 'max', shapes: [[n]], gpu: (x) => F.max(x), ref: (a) => amax(a), gradInputs: [] });
    await checkOp({ name: 'min', shapes: [[2, n / 2]], gpu: (x) => F.min(x, 1), ref: (a) => amin(a, [1]), gradInputs: [] });
    const a = randomArr([n], 11);
    expect(await F.argmax(upload(a)).item()).toBe(argmax(a, 0).data[0]);
  });
  it('4096 outputs over 11520 elements in 7 inner dims (an expanded view; too long for one invocation per output)', async () => {
    const inner = [5, 4, 4, 4, 3, 3, 4];
    const a = randomArr([1, ...inner], 12);
    const x = upload(a).expand([4096, ...inner]);
    const got = await F.sum(x, [1, 2, 3, 4, 5, 6, 7]).read();
    const s = sum(a).data[0];
    expectClose(got, new Float64Array(4096).fill(s), reductionTol(a.size), 'sum(expand([4096, ...]), inner dims)');
  });
});

describe('softmax / logSoftmax', () => {
  for (const [shape, dim] of [
    [[37, 53], 1],
    [[4, 37, 5], 1],
    [[6, 7, 9], 0],
    [[3, 4096], -1],
    [[2, 768], 1],
    [[2, 3072], 1],
  ] as [number[], number][]) {
    it(`softmax ${JSON.stringify(shape)} dim ${dim}`, () =>
      checkOp({ name: 'softmax', shapes: [shape], gpu: (x) => F.softmax(x, dim), ref: (a) => softmax(a, dim), domains: [[-4, 4]], tol: reductionTol(4) }));
    it(`logSoftmax ${JSON.stringify(shape)} dim ${dim}`, () =>
      checkOp({
        name: 'logSoftmax',
        shapes: [shape],
        gpu: (x) => F.logSoftmax(x, dim),
        ref: (a) => softmax(a, dim, true),
        domains: [[-4, 4]],
        tol: reductionTol(4),
      }));
  }
  it('reads a view at an element offset, forward and backward (softmax inside cat)', async () => {
    await checkOp({
      name: 'softmax(narrow)',
      shapes: [[5, 7]],
      prepare: (t) => t.narrow(0, 2, 3),
      gpu: (x) => F.softmax(x, 1),
      ref: (a) => softmax(new Arr(a.data.slice(14), [3, 7]), 1),
      tol: reductionTol(7),
    });
    await checkOp({
      name: 'cat(a, logSoftmax(b))',
      shapes: [[2, 4], [3, 4]],
      gpu: (a, b) => F.cat([a, F.logSoftmax(b, 1)], 0),
      ref: (a, b) => cat([a, softmax(b, 1, true)], 0),
      tol: reductionTol(4),
    });
  });
  it('is stable for large logits', async () => {
    const a = randomArr([5, 10], 9, 500, 1000);
    const got = await F.softmax(upload(a), 1).read();
    expectClose(got, softmax(a, 1).data, reductionTol(10), 'softmax(large)');
  });
});
