// Launches split for the GPU watchdog (loop-budget.ts's DISPATCH_WORK): with the dispatch work
// bound forced small, conv forward, input and weight gradients (direct, naive and tiled kernels;
// a conv and a strided transposed conv) and attention forward, dq and dk/dv run in several
// dispatches, each submitted on its own; the results equal the float64 reference (conv: the
// analytic gradients; attention: finite differences of the reference) and the unsplit results.
// Attention's backward split partials over the binding limit (maxStorageBufferBindingSize, faked
// small) run in rounds of splits, each summed into the gradient in turn.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backward, F, runtime, type Tensor } from '../../src/index.js';
import type { DispatchSpec } from '../../src/gpu/runtime.js';
import { setKernelVariant } from '../../src/gpu/variants.js';
import { setDispatchWork } from '../../src/ops/loop-budget.js';
import { expectClose, ready, upload } from '../helpers.js';
import { gradTol, reductionTol } from '../tolerance.js';
import { conv as refConv, convInputGrad, convTranspose as refConvT, convTransposeInputGrad, convTransposeWeightGrad, convWeightGrad } from '../reference/conv.js';
import { attention as refAttention } from '../reference/attention.js';
import { finiteDifference, sampleIndices } from '../reference/gradcheck.js';
import { Arr, randomArr } from '../reference/ndarray.js';

beforeAll(ready);
afterAll(() => {
  setDispatchWork(null);
  setKernelVariant('conv', null);
  setKernelVariant('attention', null);
});

/** Which part of a step a dispatch belongs to, by its context. */
const part = (ctx: string) => (/backward \(input\)/.test(ctx) ? 'dx' : /backward \(weight\)/.test(ctx) ? 'dw' : /backward/.test(ctx) ? 'bwd' : 'y');

interface Step {
  outs: Float32Array[];
  dispatches: Record<string, number>;
  submits: number;
}

/** y = f(inputs), then backward with cotangent g; the result and the input gradients, with the dispatches per part and the submissions. */
async function step(f: (...t: Tensor[]) => Tensor, inputs: Arr[], g: Arr, bound: number | null): Promise<Step> {
  const rt = runtime();
  await rt.sync();
  setDispatchWork(bound);
  const ts = inputs.map((a) => upload(a, true));
  const gt = upload(g);
  const dispatches: Record<string, number> = {};
  const real = rt.dispatch.bind(rt);
  rt.dispatch = (spec: DispatchSpec) => {
    const k = part(spec.context ?? '');
    dispatches[k] = (dispatches[k] ?? 0) + 1;
    real(spec);
  };
  const s0 = rt.submits;
  try {
    const y = f(...ts);
    backward(y, gt);
    const outs = [await y.read(), ...(await Promise.all(ts.map((t) => t.grad!.read())))];
    y.dispose();
    return { outs, dispatches, submits: rt.submits - s0 };
  } finally {
    rt.dispatch = real;
    setDispatchWork(null);
    for (const t of [...ts, gt]) t.dispose();
  }
}

/** The split step has more dispatches in every part than the unsplit one, and more submissions. */
function expectSplit(whole: Step, split: Step, parts: string[], what: string) {
  for (const p of parts) expect(split.dispatches[p] ?? 0, `${what}: ${p} dispatches split (${JSON.stringify(whole.dispatches)} -> ${JSON.stringify(split.dispatches)})`).toBeGreaterThan(whole.dispatches[p] ?? 0);
  expect(split.submits, `${what}: submissions`).toBeGreaterThan(whole.submits + 2);
}

const kvol = (w: number[]) => w.slice(2).reduce((a, b) => a * b, 1);

describe('conv launches split under a small dispatch work bound', () => {
  afterAll(() => setKernelVariant('conv', null));
  // V-Net's 5x5x5 conv (up_tr32's form, few channels) and its 2x2x2 stride-2 up-convolution
  const xs = [2, 4, 3, 4, 9];
  const ws = [5, 4, 5, 5, 5];
  const o = { padBefore: [2, 2, 2] };
  const xt = [2, 4, 3, 4, 5];
  const wt = [4, 9, 2, 2, 2];
  const ot = { stride: [2, 2, 2] };
  // (the tiled kernels run the transposed case only: their pipelines take seconds to compile on
  // SwiftShader, and its forward, input and weight gradients cover the tiled GEMM's modes 3, 0, 2)
  for (const variant of ['direct', 'naive', 'tiled'] as const) {
    if (variant !== 'tiled') it(`${variant}: conv3d k5 p2, forward and both gradients`, async () => {
      setKernelVariant('conv', variant);
      const x = randomArr(xs, 1);
      const w = randomArr(ws, 2);
      const y = refConv(x, w, null, o);
      const g = randomArr(y.shape, 3);
      const f = (a: Tensor, b: Tensor) => F.conv3d(a, b, null, { padding: 2 });
      const whole = await step(f, [x, w], g, null);
      const split = await step(f, [x, w], g, 4000);
      expectSplit(whole, split, ['y', 'dx', 'dw'], variant);
      const want = [y.data, convInputGrad(g, w, xs, o).data, convWeightGrad(g, x, ws, o).data];
      const tols = [reductionTol(ws[1] * kvol(ws)), reductionTol(ws[0] * kvol(ws)), reductionTol(xs[0] * 3 * 4 * 9)];
      ['y', 'dx', 'dw'].forEach((n, i) => {
        expectClose(split.outs[i], want[i], tols[i], `${variant} ${n} (split) vs reference`);
        expectClose(split.outs[i], whole.outs[i], tols[i], `${variant} ${n}: split vs unsplit`);
      });
    });
    if (variant === 'direct') continue;
    it(`${variant}: convTranspose3d k2 s2 (by phases), forward and both gradients`, async () => {
      setKernelVariant('conv', variant);
      const x = randomArr(xt, 4);
      const w = randomArr(wt, 5);
      const y = refConvT(x, w, null, ot);
      const g = randomArr(y.shape, 6);
      const f = (a: Tensor, b: Tensor) => F.convTranspose3d(a, b, null, { stride: 2 });
      const whole = await step(f, [x, w], g, null);
      const split = await step(f, [x, w], g, 200);
      expectSplit(whole, split, ['y', 'dx', 'dw'], variant);
      const want = [y.data, convTransposeInputGrad(g, w, xt, ot).data, convTransposeWeightGrad(g, x, wt, ot).data];
      const tols = [reductionTol(xt[1]), reductionTol(wt[1] * kvol(wt)), reductionTol(2 * 3 * 4 * 5)];
      ['y', 'dx', 'dw'].forEach((n, i) => {
        expectClose(split.outs[i], want[i], tols[i], `${variant} transposed ${n} (split) vs reference`);
        expectClose(split.outs[i], whole.outs[i], tols[i], `${variant} transposed ${n}: split vs unsplit`);
      });
    });
  }
});

describe('attention launches split under a small dispatch work bound', () => {
  afterAll(() => setKernelVariant('attention', null));
  it('fused: forward, dq and dk/dv over 3 query and 3 key blocks', async () => {
    setKernelVariant('attention', 'fused');
    const shapes = [[2, 140, 8], [2, 130, 8], [2, 130, 8]];
    const [q, k, v] = shapes.map((s, i) => randomArr(s, 10 + i));
    const ref = (a: Arr, b: Arr, c: Arr) => refAttention(a, b, c, null);
    const y = ref(q, k, v);
    const g = randomArr(y.shape, 13);
    const f = (a: Tensor, b: Tensor, c: Tensor) => F.scaledDotProductAttention(a, b, c);
    const whole = await step(f, [q, k, v], g, null);
    // one block (64 rows) is 64 * 2 * 8 * 2 * 130 multiply-adds in the forward: one block per dispatch
    const split = await step(f, [q, k, v], g, 1000);
    expectSplit(whole, split, ['y', 'bwd'], 'attention');
    const tol = reductionTol(130 * 8);
    expectClose(split.outs[0], y.data, tol, 'attention forward (split) vs reference');
    expectClose(split.outs[0], whole.outs[0], tol, 'attention forward: split vs unsplit');
    for (let i = 0; i < 3; i++) {
      const idx = sampleIndices(shapes[i].reduce((a, b) => a * b, 1), 20);
      const fd = finiteDifference(ref, [q, k, v], g, i, idx);
      expectClose(idx.map((j) => split.outs[i + 1][j]), fd, gradTol(tol), `attention d${'qkv'[i]} (split) vs finite differences`, idx);
      expectClose(split.outs[i + 1], whole.outs[i + 1], gradTol(tol), `attention d${'qkv'[i]}: split vs unsplit`);
    }
  });
});

describe('attention backward partials over the binding limit', () => {
  afterAll(() => setKernelVariant('attention', null));
  it('dq and dk/dv split partials run in rounds that each fit one binding; the gradients match finite differences', async () => {
    // One tile per split (a loop budget of 1200 at D = 16): dq over 3 key splits of 3200 elements,
    // dk/dv over 4 query splits of 4800; a binding of 32 KiB holds 2 of the first and 1 of the second
    // (the pool rounds 2 x 4800 floats up to 40 KiB).
    setKernelVariant('attention', 'fused', { budget: 1200 });
    const shapes = [[1, 1, 200, 16], [1, 1, 150, 16], [1, 1, 150, 16]];
    const xs = shapes.map((s, i) => randomArr(s, 20 + i));
    const ts = xs.map((a) => upload(a, true));
    const ref = (a: Arr, b: Arr, c: Arr) => refAttention(a, b, c, null);
    const want = ref(xs[0], xs[1], xs[2]);
    const tol = reductionTol(150 + 16);
    const y = F.scaledDotProductAttention(ts[0], ts[1], ts[2]);
    expectClose(await y.read(), want.data, tol, 'attention forward');
    const g = randomArr(want.shape, 23);
    const gt = upload(g);
    const rt = runtime();
    const LIMIT = 32 * 1024;
    const real = { limits: rt.limits, dispatch: rt.dispatch.bind(rt) };
    const rtw = rt as unknown as { limits: GPUSupportedLimits };
    const sums: number[] = [];
    let largest = 0;
    rtw.limits = new Proxy(real.limits, { get: (t, k) => (k === 'maxStorageBufferBindingSize' ? LIMIT : Reflect.get(t, k, t)) });
    rt.dispatch = (spec: DispatchSpec) => {
      if (spec.entry === 'backward_sum_splits') sums.push(spec.params?.splits as number);
      for (const b of Object.values(spec.buffers)) largest = Math.max(largest, b?.size ?? 0);
      real.dispatch(spec); // (refuses a buffer over the limit)
    };
    try {
      backward(y, gt);
    } finally {
      rtw.limits = real.limits;
      rt.dispatch = real.dispatch;
    }
    // rounds of dq's splits (2 + 1) and of dk/dv's (1 + 1 + 1 + 1), each summed in turn
    expect(sums, 'splits summed per backward_sum_splits launch').toEqual([2, 1, 1, 1, 1, 1]);
    expect(largest, 'the largest buffer bound').toBeLessThanOrEqual(LIMIT);
    for (let i = 0; i < 3; i++) {
      const all = await ts[i].grad!.read();
      const idx = sampleIndices(xs[i].size, 12);
      expectClose(idx.map((j) => all[j]), finiteDifference(ref, xs, g, i, idx), gradTol(tol), `attention d${'qkv'[i]} (rounds) vs finite differences`, idx);
    }
    for (const t of [...ts, gt, y]) (t.grad?.dispose(), t.dispose());
  });
});
