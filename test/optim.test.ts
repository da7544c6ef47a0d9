// Optimisers: SGD (momentum, dampening, weight decay, Nesterov, maximize), Adam and AdamW (weight
// decay, AMSGrad, betas, parameter groups) against float64 traces of PyTorch's documented update
// rules over 3 steps; zeroGrad, resume through stateDict/loadStateDict, dispose, and the PolyLR /
// CosineLR schedules.
import { beforeAll, describe, expect, it } from 'vitest';
import { optim, tensor, type Tensor } from '../src/index.js';
import { expectClose, ready } from './helpers.js';
import { randomArr } from './reference/ndarray.js';
import { adamTrace, sgdTrace, type AdamRef, type SgdRef } from './reference/optim.js';
import { elementwiseTol } from './tolerance.js';

beforeAll(ready);

const SHAPES = [[5, 3], [7], [2, 130]];
const STEP_SCALE = [1, 2, 0.1]; // a shrinking last gradient makes AMSGrad's max matter

function setup(seed = 1) {
  const p0 = SHAPES.map((s, i) => randomArr(s, seed * 31 + i));
  const grads = STEP_SCALE.map((k, t) => SHAPES.map((s, i) => randomArr(s, seed * 97 + t * 13 + i).map((x) => Math.fround(x * k))));
  const params = p0.map((a) => tensor(a.f32(), a.shape, { requiresGrad: true }));
  return { p0, grads, params };
}

function setGrads(params: Tensor[], grads: { f32(): Float32Array; shape: readonly number[] }[]) {
  params.forEach((p, i) => {
    p.grad?.dispose();
    p.grad = tensor(grads[i].f32(), grads[i].shape);
  });
}

async function runAndCheck(name: string, make: (ps: Tensor[]) => optim.Optimizer<{ lr: number }>, trace: (p0: Float64Array, g: Float64Array[], i: number) => Float64Array[]) {
  const { p0, grads, params } = setup();
  const opt = make(params);
  const want = p0.map((a, i) => trace(a.data, grads.map((gs) => gs[i].data), i));
  for (let t = 0; t < 3; t++) {
    setGrads(params, grads[t]);
    opt.step();
    for (let i = 0; i < params.length; i++) {
      expectClose(await params[i].read(), want[i][t], elementwiseTol(), `${name}: param ${i} ${JSON.stringify(SHAPES[i])} after step ${t + 1}`);
    }
  }
  opt.zeroGrad();
  expect(params.every((p) => p.grad === null)).toBe(true);
  opt.dispose();
  params.forEach((p) => p.dispose());
}

describe('SGD', () => {
  const variants: SgdRef[] = [
    { lr: 0.1 },
    { lr: 0.1, weightDecay: 0.05 },
    { lr: 0.1, momentum: 0.9 },
    { lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.01 },
    { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.02 },
    { lr: 0.1, momentum: 0.5, maximize: true },
  ];
  for (const v of variants) {
    it(JSON.stringify(v), () => runAndCheck(`SGD ${JSON.stringify(v)}`, (ps) => new optim.SGD(ps, v), (p0, g) => sgdTrace(p0, g, v)));
  }
});

describe('Adam and AdamW', () => {
  const variants: AdamRef[] = [
    { lr: 0.05 },
    { lr: 0.05, weightDecay: 0.1 },
    { lr: 0.05, betas: [0.8, 0.5], amsgrad: true },
    { lr: 0.02, betas: [0.5, 0.9], eps: 1e-3, weightDecay: 0.05, amsgrad: true, maximize: true },
  ];
  for (const v of variants) {
    it(`Adam ${JSON.stringify(v)}`, () => runAndCheck(`Adam ${JSON.stringify(v)}`, (ps) => new optim.Adam(ps, v), (p0, g) => adamTrace(p0, g, v).params));
  }
  const wVariants: AdamRef[] = [{ lr: 0.05 }, { lr: 0.05, weightDecay: 0.3, betas: [0.8, 0.5], amsgrad: true }];
  for (const v of wVariants) {
    // AdamW's default weight decay is 1e-2
    const ref = { weightDecay: 1e-2, ...v, decoupled: true };
    it(`AdamW ${JSON.stringify(v)}`, () => runAndCheck(`AdamW ${JSON.stringify(v)}`, (ps) => new optim.AdamW(ps, v), (p0, g) => adamTrace(p0, g, ref).params));
  }
  it('parameter groups with their own lr and weight decay', () =>
    runAndCheck(
      'AdamW groups',
      (ps) => new optim.AdamW([{ params: [ps[0], ps[2]] }, { params: [ps[1]], lr: 0.2, weightDecay: 0 }], { lr: 0.05 }),
      (p0, g, i) => adamTrace(p0, g, i === 1 ? { lr: 0.2, weightDecay: 0, decoupled: true } : { lr: 0.05, weightDecay: 1e-2, decoupled: true }).params,
    ));
});

describe('optimizer state', () => {
  it('resumes through stateDict/loadStateDict exactly as an uninterrupted run', async () => {
    const v: AdamRef = { lr: 0.05, betas: [0.8, 0.5], amsgrad: true, weightDecay: 0.1 };
    const { p0, grads, params } = setup(3);
    const a = new optim.AdamW(params, v);
    for (let t = 0; t < 2; t++) {
      setGrads(params, grads[t]);
      a.step();
    }
    // a fresh optimizer on copies of the parameters, state loaded from the first
    const copies = await Promise.all(params.map(async (p) => tensor(await p.read(), p.shape, { requiresGrad: true })));
    const sd = a.stateDict();
    expect([...sd.state.keys()]).toEqual([0, 1, 2]);
    expect(Object.keys(sd.state.get(0)!).sort()).toEqual(['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step']);
    expect(sd.state.get(0)!.step).toBe(2);
    const b = new optim.AdamW(copies, { lr: 1 }); // hyperparameters come from the state dict
    b.loadStateDict(sd);
    expect(b.paramGroups[0].lr).toBe(0.05);
    a.dispose(); // b holds copies, so a's state may go
    setGrads(copies, grads[2]);
    b.step();
    for (let i = 0; i < copies.length; i++) {
      const want = adamTrace(p0[i].data, grads.map((gs) => gs[i].data), { ...v, decoupled: true });
      expectClose(await copies[i].read(), want.params[2], elementwiseTol(), `resumed param ${i}`);
      expectClose(await (b.stateDict().state.get(i)!.exp_avg as Tensor).read(), want.m, elementwiseTol(), `resumed exp_avg ${i}`);
    }
    b.dispose();
  });
  it('dispose frees the state tensors; parameters without a gradient are skipped', async () => {
    const { params, grads } = setup(5);
    const opt = new optim.SGD(params, { lr: 0.1, momentum: 0.9 });
    setGrads(params, grads[0]);
    params[1].grad!.dispose();
    params[1].grad = null;
    const before = await params[1].read();
    opt.step();
    expect([...(await params[1].read())]).toEqual([...before]);
    const state = [...opt.stateDict().state.values()].map((s) => s.momentum_buffer as Tensor);
    expect(state.length).toBe(2);
    opt.dispose();
    expect(state.every((t) => t.isDisposed)).toBe(true);
  });
  it('refuses a parameter that is not a leaf', () => {
    const p = tensor([1, 2, 3], [3], { requiresGrad: true });
    const q = p.mul(2);
    const opt = new optim.SGD([q], { lr: 0.1 });
    q.grad = tensor([1, 1, 1], [3]);
    expect(() => opt.step()).toThrow(/contiguous leaf/);
  });
});

describe('learning-rate schedules', () => {
  it('PolyLR: lr * (1 - t/max)^power, driving the SGD update', async () => {
    const { p0, grads, params } = setup(7);
    const opt = new optim.SGD(params, { lr: 0.1 });
    const sched = new optim.PolyLR(opt, { maxSteps: 4, power: 0.9 });
    const lrs = [0, 1, 2].map((t) => 0.1 * (1 - t / 4) ** 0.9);
    for (let t = 0; t < 3; t++) {
      expect(sched.getLastLr()[0]).toBeCloseTo(lrs[t], 12);
      setGrads(params, grads[t]);
      opt.step();
      sched.step();
    }
    for (let i = 0; i < params.length; i++) {
      const want = sgdTrace(p0[i].data, grads.map((gs) => gs[i].data), { lr: 0 }, lrs);
      expectClose(await params[i].read(), want[2], elementwiseTol(), `PolyLR-driven SGD param ${i}`);
    }
    sched.step();
    sched.step();
    expect(sched.getLastLr()[0]).toBe(0); // clamped at maxSteps
    opt.dispose();
  });
  it('CosineLR with linear warmup, per group, and resumable', () => {
    const a = tensor([1], [1], { requiresGrad: true });
    const b = tensor([1], [1], { requiresGrad: true });
    const opt = new optim.Adam([{ params: [a] }, { params: [b], lr: 0.5 }], { lr: 1 });
    const o = { maxSteps: 10, warmupSteps: 3, minLr: 0.01, warmupStartFactor: 0.1 };
    const sched = new optim.CosineLR(opt, o);
    const expected = (base: number, t: number) =>
      t < 3 ? base * (0.1 + (0.9 * t) / 3) : 0.01 + ((base - 0.01) * (1 + Math.cos((Math.PI * Math.min(t - 3, 7)) / 7))) / 2;
    for (let t = 0; t <= 12; t++) {
      const [l0, l1] = sched.getLastLr();
      expect(l0).toBeCloseTo(expected(1, t), 12);
      expect(l1).toBeCloseTo(expected(0.5, t), 12);
      if (t === 5) {
        const other = new optim.CosineLR(new optim.Adam([{ params: [a] }, { params: [b], lr: 0.5 }], { lr: 1 }), o);
        other.loadStateDict(sched.stateDict());
        expect(other.getLastLr()).toEqual(sched.getLastLr());
      }
      sched.step();
    }
    expect(sched.getLastLr()[0]).toBeCloseTo(0.01, 12);
  });
});
