// Elementwise ops: forward vs the float64 reference and gradients vs finite differences, with
// odd sizes, broadcasting and non-contiguous (permuted, narrowed, expanded) inputs.
import { beforeAll, describe, expect, it } from 'vitest';
import { F, tensor, type Tensor } from '../../src/index.js';
import { checkOp, ready } from '../helpers.js';
import { binary, fns, ternary, unary } from '../reference/ops.js';
import { Arr } from '../reference/ndarray.js';
import { coalesceDims } from '../../src/ops/broadcast.js';

beforeAll(ready);

const ODD = [37, 53, 29];

describe('unary ops', () => {
  const cases: [string, (x: Tensor) => Tensor, (x: number) => number, [number, number]][] = [
    ['neg', F.neg, fns.neg, [-2, 2]],
    ['exp', F.exp, fns.exp, [-3, 3]],
    ['log', F.log, fns.log, [0.1, 4]],
    ['sqrt', F.sqrt, fns.sqrt, [0.1, 4]],
    ['rsqrt', F.rsqrt, fns.rsqrt, [0.2, 4]],
    ['abs', F.abs, fns.abs, [-2, 2]],
    ['sigmoid', F.sigmoid, fns.sigmoid, [-6, 6]],
    ['tanh', F.tanh, fns.tanh, [-3, 3]],
    ['sin', F.sin, Math.sin, [-30, 30]],
    ['cos', F.cos, Math.cos, [-30, 30]],
    ['relu', F.relu, fns.relu, [-2, 2]],
    ['gelu', F.gelu, fns.gelu, [-4, 4]],
    ['elu', (x) => F.elu(x, 0.7), fns.elu(0.7), [-3, 3]],
    ['pow 3', (x) => F.pow(x, 3), (x) => x ** 3, [-2, 2]],
    ['pow 2.5', (x) => F.pow(x, 2.5), (x) => x ** 2.5, [0.1, 2]],
    ['clamp', (x) => F.clamp(x, -0.5, 0.25), (x) => Math.min(Math.max(x, -0.5), 0.25), [-1, 1]],
  ];
  for (const [name, gpu, f, domain] of cases) {
    it(`${name} on [37, 53, 29]`, () => checkOp({ name, shapes: [ODD], gpu, ref: (a) => unary(a, f), domains: [domain] }));
  }
  it('gelu matches the erf form in the tails', () =>
    checkOp({ name: 'gelu', shapes: [[1000]], gpu: F.gelu, ref: (a) => unary(a, fns.gelu), domains: [[-10, 10]] }));
});

describe('binary ops with broadcasting', () => {
  const cases: [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number, [number, number], [number, number]][] = [
    ['add', F.add, (x, y) => x + y, [-1, 1], [-1, 1]],
    ['sub', F.sub, (x, y) => x - y, [-1, 1], [-1, 1]],
    ['mul', F.mul, (x, y) => x * y, [-1, 1], [-1, 1]],
    ['div', F.div, (x, y) => x / y, [-1, 1], [0.5, 2]],
    ['pow', F.pow, (x, y) => x ** y, [0.5, 2], [-1.5, 1.5]],
    ['maximum', F.maximum, Math.max, [-1, 1], [-1, 1]],
  ];
  const shapes: number[][][] = [
    [ODD, ODD],
    [[37, 1, 29], [53, 1]],
    [[5, 1, 7], [1]],
    [[3, 4], [2, 1, 1]],
  ];
  for (const [name, gpu, f, da, db] of cases) {
    for (const s of shapes) {
      it(`${name} ${JSON.stringify(s)}`, () => checkOp({ name, shapes: s, gpu, ref: (a, b) => binary(a, b, f), domains: [da, db] }));
    }
  }
  it('pow with a tensor exponent has finite gradients at a zero base', async () => {
    const x = tensor([0, 1, -2, 0], [4], { requiresGrad: true });
    const e = tensor([2, 2, 3, 0.5]);
    F.pow(x, e).sum().backward();
    const g = await x.grad!.read();
    expect([...g.slice(0, 3)]).toEqual([0, 2, 12]);
    expect(g[3]).toBe(Infinity); // d/dx sqrt(x) at 0, as PyTorch
  });
  it('scalar operands', () =>
    checkOp({
      name: 'scalar chain',
      shapes: [[7, 9]],
      gpu: (x) => F.div(F.sub(F.mul(F.add(x, 2), 3), 1), 4),
      ref: (a) => unary(a, (x) => ((x + 2) * 3 - 1) / 4),
    }));
  it('prelu with one slope per channel', () =>
    checkOp({
      name: 'prelu',
      shapes: [[2, 5, 7, 3], [5]],
      gpu: F.prelu,
      ref: (x, w) => binary(x, w.reshape([5, 1, 1]), fns.prelu),
    }));
  it('where with a broadcast condition', () =>
    checkOp({
      name: 'where',
      shapes: [[6, 1], [6, 11], [11]],
      gpu: (c, a, b) => F.where(F.gt(c, 0), a, b),
      ref: (c, a, b) => ternary(c, a, b, (x, y, z) => (x > 0 ? y : z)),
      gradInputs: [1, 2],
    }));
});

describe('non-contiguous inputs', () => {
  it('mul of a permuted and a narrowed view', () =>
    checkOp({
      name: 'mul(view)',
      shapes: [[29, 37, 5], [37, 40]],
      prepare: (t, i) => (i === 0 ? t.permute(1, 2, 0).narrow(1, 1, 3).narrow(2, 0, 29) : t.narrow(1, 3, 29).unsqueeze(1)),
      gpu: F.mul,
      ref: (a, b) => {
        // a: [29,37,5] -> permute(1,2,0) -> [37,5,29] -> narrow(1,1,3) -> [37,3,29]; b: [37,40] -> cols 3..31 -> [37,1,29]
        const out = Arr.zeros([37, 3, 29]);
        for (let i = 0; i < 37; i++)
          for (let j = 0; j < 3; j++)
            for (let k = 0; k < 29; k++) out.data[(i * 3 + j) * 29 + k] = a.get([k, i, j + 1]) * b.get([i, k + 3]);
        return out;
      },
    }));
  it('expand then add', () =>
    checkOp({
      name: 'expand+add',
      shapes: [[1, 13], [9, 13]],
      prepare: (t, i) => (i === 0 ? t.expand(9, 13) : t),
      gpu: F.add,
      ref: (a, b) => binary(a, b, (x, y) => x + y),
    }));
});

describe('autograd behaviour', () => {
  it('accumulates .grad across backward calls and zeroGrad clears it', async () => {
    const x = tensor([1, 2, 3], [3], { requiresGrad: true });
    x.mul(x).sum().backward();
    x.mul(3).sum().backward();
    expect([...(await x.grad!.read())]).toEqual([5, 7, 9]);
    x.zeroGrad();
    expect(x.grad).toBeNull();
  });
  it('records nothing when no input requires grad, or inside noGrad', async () => {
    const { noGrad } = await import('../../src/index.js');
    const a = tensor([1, 2]);
    expect(a.mul(2).gradFn).toBeNull();
    const b = tensor([1, 2], [2], { requiresGrad: true });
    const c = noGrad(() => b.mul(2));
    expect(c.requiresGrad).toBe(false);
    expect(c.gradFn).toBeNull();
    expect(b.mul(2).requiresGrad).toBe(true);
  });
  it('detach cuts the graph', async () => {
    const x = tensor([2, 3], [2], { requiresGrad: true });
    const y = x.mul(x);
    const z = y.detach().mul(x).sum();
    z.backward();
    expect([...(await x.grad!.read())]).toEqual([4, 9]);
  });
  it('a tensor used twice gets both contributions (diamond graph)', async () => {
    const x = tensor([0.5, -1.5], [2], { requiresGrad: true });
    const a = x.exp();
    const y = a.mul(a).add(a).sum(); // d/dx (e^2x + e^x) = 2e^2x + e^x
    y.backward();
    const g = await x.grad!.read();
    [0.5, -1.5].forEach((v, i) => expect(g[i]).toBeCloseTo(2 * Math.exp(2 * v) + Math.exp(v), 4));
  });
  it('backward through a freed graph says how to keep it', () => {
    const x = tensor([1], [1], { requiresGrad: true });
    const y = x.mul(2).sum();
    y.backward();
    expect(() => y.backward()).toThrow(/retainGraph/);
  });
  it('dispose() of a tensor the graph needs waits until backward has used it', async () => {
    const x = tensor([0.5, 1], [2], { requiresGrad: true });
    const a = x.exp();
    const mask = tensor([1, 3]);
    const b = a.mul(a).mul(mask);
    a.dispose();
    mask.dispose();
    expect(a.isDisposed).toBe(false);
    expect(mask.isDisposed).toBe(false);
    const loss = b.sum();
    b.dispose();
    loss.backward();
    expect(a.isDisposed).toBe(true);
    expect(b.isDisposed).toBe(true);
    expect(mask.isDisposed).toBe(true);
    const g = await x.grad!.read();
    [0.5, 1].forEach((v, i) => expect(g[i]).toBeCloseTo([1, 3][i] * 2 * Math.exp(2 * v), 4));
    const plain = tensor([1, 2]);
    plain.dispose();
    expect(plain.isDisposed).toBe(true);
  });
  it('a non-scalar backward without a gradient is refused', () => {
    const x = tensor([1, 2], [2], { requiresGrad: true });
    expect(() => x.mul(2).backward()).toThrow(/gradient/);
  });
});

describe('dim merging before dispatch', () => {
  it('merges dims every operand walks as one and drops unit dims', () => {
    // out and x contiguous [2, 8, 4, 3, 5], a per-channel weight broadcast [1, 8, 1, 1, 1]
    const shape = [2, 8, 4, 3, 5];
    const dense = [480, 60, 15, 5, 1];
    expect(coalesceDims(shape, [dense, dense, [0, 1, 0, 0, 0]])).toEqual({ shape: [2, 8, 60], strides: [[480, 60, 1], [480, 60, 1], [0, 1, 0]] });
    expect(coalesceDims(shape, [dense, dense])).toEqual({ shape: [960], strides: [[1], [1]] });
    // a transposed operand keeps its dims apart
    expect(coalesceDims([3, 4], [[4, 1], [1, 3]])).toEqual({ shape: [3, 4], strides: [[4, 1], [1, 3]] });
    expect(coalesceDims([1, 1], [[1, 1]])).toEqual({ shape: [1], strides: [[0]] });
  });
});
