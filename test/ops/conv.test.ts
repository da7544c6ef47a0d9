// Convolution and transposed convolution: forward vs the float64 reference, gradients of input,
// weight and bias vs finite differences, on the model shapes in small form (V-Net, TransUNet, SAM),
// groups, dilation, asymmetric and 'same' padding, odd sizes and sizes not divisible by the tile;
// the fused epilogue (bias + activation + residual) forward and backward; both kernel variants;
// split reductions (small limits take the split, fold, slab and z-slice paths at small shapes);
// the float64 reference's analytic gradients against its finite differences.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { F, noGrad, runtime, tensor, type Tensor } from '../../src/index.js';
import { conv, convTranspose, setConvReductionLimits, setConvTransposePhases, type ConvReductionLimits, type ConvVariant } from '../../src/ops/conv.js';
import { setKernelVariant } from '../../src/gpu/variants.js';
import { checkOp, expectClose, expectStepLeavesNothing, held, ready } from '../helpers.js';
import { gradTol, reductionTol } from '../tolerance.js';
import {
  conv as refConv,
  convBiasGrad,
  convInputGrad,
  convTranspose as refConvT,
  convTransposeInputGrad,
  convTransposeWeightGrad,
  convWeightGrad,
  type RefConvOptions,
  type RefConvTransposeOptions,
} from '../reference/conv.js';
import { finiteDifference } from '../reference/gradcheck.js';
import { binary, fns } from '../reference/ops.js';
import { Arr, randomArr } from '../reference/ndarray.js';

beforeAll(ready);
afterAll(() => setKernelVariant('conv', null));

const kvol = (w: number[]) => w.slice(2).reduce((a, b) => a * b, 1);

interface ConvCase {
  name: string;
  x: number[];
  w: number[];
  bias?: boolean;
  opts: Parameters<typeof F.conv2d>[3];
  ref: RefConvOptions;
}

interface ConvTCase {
  name: string;
  x: number[];
  w: number[];
  bias?: boolean;
  opts: Parameters<typeof F.convTranspose2d>[3];
  ref: RefConvTransposeOptions;
}

const convCases: ConvCase[] = [
  // V-Net (small volumes, odd sizes)
  { name: 'V-Net input conv 1->16 k5 p2', x: [1, 1, 6, 7, 5], w: [16, 1, 5, 5, 5], bias: true, opts: { padding: 2 }, ref: { padBefore: [2, 2, 2] } },
  { name: 'V-Net down conv 16->32 k2 s2', x: [2, 16, 6, 6, 4], w: [32, 16, 2, 2, 2], bias: true, opts: { stride: 2 }, ref: { stride: [2, 2, 2] } },
  { name: 'V-Net output conv 16->2 k1', x: [1, 16, 6, 7, 5], w: [2, 16, 1, 1, 1], bias: true, opts: {}, ref: {} },
  { name: 'conv3d 3x3x3 odd stride 2 pad 1', x: [1, 3, 7, 5, 6], w: [4, 3, 3, 3, 3], bias: true, opts: { stride: 2, padding: 1 }, ref: { stride: [2, 2, 2], padBefore: [1, 1, 1] } },
  // TransUNet's ResNet
  { name: 'ResNet root 7x7 s2 p3', x: [1, 3, 13, 11], w: [8, 3, 7, 7], opts: { stride: 2, padding: 3 }, ref: { stride: [2, 2], padBefore: [3, 3] } },
  { name: 'ResNet 3x3 s2 p1', x: [2, 4, 9, 7], w: [4, 4, 3, 3], opts: { stride: 2, padding: 1 }, ref: { stride: [2, 2], padBefore: [1, 1] } },
  { name: 'ResNet projection 1x1 s2', x: [1, 4, 7, 9], w: [8, 4, 1, 1], opts: { stride: 2 }, ref: { stride: [2, 2] } },
  // SAM
  { name: 'SAM patch embed 16x16 s16', x: [1, 2, 32, 32], w: [4, 2, 16, 16], bias: true, opts: { stride: 16 }, ref: { stride: [16, 16] } },
  { name: 'SAM neck 1x1', x: [1, 16, 6, 5], w: [8, 16, 1, 1], opts: {}, ref: {} },
  { name: 'SAM neck 3x3 p1', x: [1, 8, 6, 5], w: [8, 8, 3, 3], opts: { padding: 1 }, ref: { padBefore: [1, 1] } },
  // groups, dilation, padding forms
  { name: 'groups 2 dilation 2', x: [2, 4, 7, 6], w: [6, 2, 3, 3], bias: true, opts: { groups: 2, dilation: 2, padding: 2 }, ref: { groups: 2, dilation: [2, 2], padBefore: [2, 2] } },
  { name: 'depthwise (groups = C)', x: [1, 4, 7, 7], w: [4, 1, 3, 3], bias: true, opts: { groups: 4, padding: 1 }, ref: { groups: 4, padBefore: [1, 1] } },
  {
    name: 'asymmetric padding pairs, per-axis stride',
    x: [1, 3, 6, 5],
    w: [4, 3, 3, 2],
    bias: true,
    opts: { padding: [[1, 0], [2, 1]], stride: [2, 1] },
    ref: { padBefore: [1, 2], padAfter: [0, 1], stride: [2, 1] },
  },
  { name: 'kernel smaller than the stride (inputs no window reaches)', x: [1, 2, 8, 7], w: [3, 2, 2, 2], bias: true, opts: { stride: 3, padding: 1 }, ref: { stride: [3, 3], padBefore: [1, 1] } },
  { name: "'same' with an even kernel", x: [1, 2, 7, 6], w: [3, 2, 4, 4], opts: { padding: 'same' }, ref: { padBefore: [1, 1], padAfter: [2, 2] } },
  { name: 'conv1d stride 2 pad 1', x: [2, 3, 11], w: [4, 3, 3], bias: true, opts: { stride: 2, padding: 1 }, ref: { stride: [2], padBefore: [1] } },
  // more than one 64x64 tile in both M and N, K not a multiple of the tile depth
  { name: 'M and N past one tile', x: [1, 3, 9, 11], w: [70, 3, 1, 1], bias: true, opts: {}, ref: {} },
];

const convTCases: ConvTCase[] = [
  { name: 'V-Net up conv 32->16 k2 s2', x: [1, 32, 3, 3, 2], w: [32, 16, 2, 2, 2], bias: true, opts: { stride: 2 }, ref: { stride: [2, 2, 2] } },
  { name: 'SAM upscaling 2x2 s2', x: [2, 8, 5, 3], w: [8, 4, 2, 2], bias: true, opts: { stride: 2 }, ref: { stride: [2, 2] } },
  {
    name: 'groups 2 stride 2 padding 1 outputPadding 1 dilation 2',
    x: [1, 4, 4, 5],
    w: [4, 3, 3, 3],
    bias: true,
    opts: { stride: 2, padding: 1, outputPadding: 1, dilation: 2, groups: 2 },
    ref: { stride: [2, 2], padding: [1, 1], outputPadding: [1, 1], dilation: [2, 2], groups: 2 },
  },
  {
    name: 'per-axis stride [3, 2], kernel 2 (phases without taps), padding 1',
    x: [2, 3, 3, 4],
    w: [3, 2, 2, 2],
    bias: true,
    opts: { stride: [3, 2], padding: 1, outputPadding: [2, 1] },
    ref: { stride: [3, 2], padding: [1, 1], outputPadding: [2, 1] },
  },
  {
    name: 'conv3d k3 s2 p1 outputPadding 1',
    x: [1, 2, 3, 4, 3],
    w: [2, 3, 3, 3, 3],
    opts: { stride: 2, padding: 1, outputPadding: 1 },
    ref: { stride: [2, 2, 2], padding: [1, 1, 1], outputPadding: [1, 1, 1] },
  },
];

function runConv(c: ConvCase) {
  const shapes = c.bias ? [c.x, c.w, [c.w[0]]] : [c.x, c.w];
  return checkOp({
    name: c.name,
    shapes,
    gpu: (x, w, b) => (c.x.length === 5 ? F.conv3d : c.x.length === 4 ? F.conv2d : F.conv1d)(x, w, b ?? null, c.opts),
    ref: (x, w, b) => refConv(x, w, b ?? null, c.ref),
    tol: reductionTol(c.w[1] * kvol(c.w)),
  });
}

function runConvT(c: ConvTCase) {
  const groups = c.ref.groups ?? 1;
  const shapes = c.bias ? [c.x, c.w, [c.w[1] * groups]] : [c.x, c.w];
  return checkOp({
    name: c.name,
    shapes,
    gpu: (x, w, b) => (c.x.length === 5 ? F.convTranspose3d : F.convTranspose2d)(x, w, b ?? null, c.opts),
    ref: (x, w, b) => refConvT(x, w, b ?? null, c.ref),
    tol: reductionTol((c.x[1] / groups) * kvol(c.w)),
  });
}

for (const variant of ['tiled', 'naive'] as ConvVariant[]) {
  describe(`conv (${variant} kernels)`, () => {
    beforeAll(() => setKernelVariant('conv', variant));
    afterAll(() => setKernelVariant('conv', null));
    // The naive variant runs a representative subset; the tiled one every case.
    const subset = <T extends { name: string }>(cs: T[], names: string[]) => (variant === 'tiled' ? cs : cs.filter((c) => names.some((n) => c.name.startsWith(n))));
    for (const c of subset(convCases, ['V-Net down', 'ResNet 3x3', 'groups 2', 'asymmetric', 'conv1d'])) it(c.name, () => runConv(c));
    for (const c of subset(convTCases, ['V-Net up', 'groups 2'])) it(`transposed: ${c.name}`, () => runConvT(c));
  });
}

// The direct kernels (stride 1, dilation 1, one group; forward, input and weight gradients): the
// stride-1 cases above plus widths past one 16-column block, output channels not a multiple of 4,
// batch 2 and 'same' padding with an even kernel (leading padding below k-1 for the input gradient).
describe('conv (direct kernels)', () => {
  beforeAll(() => setKernelVariant('conv', 'direct'));
  afterAll(() => setKernelVariant('conv', null));
  const direct: ConvCase[] = [
    ...convCases.filter((c) => ['V-Net input', 'V-Net output', 'SAM neck', "'same'"].some((n) => c.name.startsWith(n))),
    { name: 'V-Net 5x5x5 6->6 p2, width 19 (two column blocks), batch 2', x: [2, 6, 3, 4, 19], w: [6, 6, 5, 5, 5], bias: true, opts: { padding: 2 }, ref: { padBefore: [2, 2, 2] } },
    { name: 'conv3d 3x3x3 no padding, width 7', x: [1, 3, 5, 4, 7], w: [5, 3, 3, 3, 3], opts: {}, ref: {} },
    { name: 'conv2d 5x5 p1 (leading padding below k-1)', x: [2, 2, 6, 9], w: [3, 2, 5, 5], bias: true, opts: { padding: 1 }, ref: { padBefore: [1, 1] } },
    { name: 'conv1d k3 p1', x: [2, 3, 21], w: [4, 3, 3], bias: true, opts: { padding: 1 }, ref: { padBefore: [1] } },
  ];
  for (const c of direct) it(c.name, () => runConv(c));
  it('runs the direct kernels (no silent fallback)', async () => {
    const y = F.conv3d(tensor(new Float32Array(2 * 9 * 9 * 9), [1, 2, 9, 9, 9]), tensor(new Float32Array(3 * 2 * 125), [3, 2, 5, 5, 5]), null, { padding: 2 });
    expect(runtime().lastContext).toMatch(/\[direct\]$/);
    y.dispose();
  });
});

// Split reductions: with a loop budget of 300 iterations every kernel splits its reduction (over
// input channels, taps, or batch and space) into chunks whose partials a second pass sums pairwise
// and finishes with the epilogue; a fold group of 2 sums them in several levels, a 4 KiB partials
// cap runs the output in slabs, and a fake limit of 16 workgroups per dimension slices z.
describe('split reductions', () => {
  afterAll(() => {
    setKernelVariant('conv', null);
    setConvReductionLimits();
  });
  const splitConv = convCases.filter((c) => ['V-Net down', 'conv3d 3x3x3', 'groups 2'].some((n) => c.name.startsWith(n)));
  const splitConvT = convTCases.filter((c) => ['V-Net up', 'per-axis stride'].some((n) => c.name.startsWith(n)));
  const wide: ConvCase = { name: 'V-Net 5x5x5 6->6 p2, width 19, batch 2', x: [2, 6, 3, 4, 19], w: [6, 6, 5, 5, 5], bias: true, opts: { padding: 2 }, ref: { padBefore: [2, 2, 2] } };
  const limitSets: [string, Partial<ConvReductionLimits>][] = [
    ['budget 300', { loopBudget: 300 }],
    ['budget 300, fold group 2, 4 KiB of partials', { loopBudget: 300, sumGroup: 2, partialBytes: 4096 }],
  ];
  for (const variant of ['naive', 'tiled', 'direct'] as ConvVariant[]) {
    for (const [what, limits] of limitSets) {
      describe(`${variant}, ${what}`, () => {
        beforeAll(() => {
          setKernelVariant('conv', variant);
          setConvReductionLimits(limits);
        });
        afterAll(() => setConvReductionLimits());
        it(wide.name, () => runConv(wide));
        if (variant !== 'direct') {
          for (const c of splitConv) it(c.name, () => runConv(c));
          for (const c of splitConvT) it(`transposed: ${c.name}`, () => runConvT(c));
        }
        it('conv + bias + prelu + residual, backward to all five inputs', () =>
          checkOp({
            name: 'conv+bias+prelu+residual',
            shapes: [[2, 3, 5, 6], [4, 3, 3, 3], [4], [4], [2, 4, 5, 6]],
            gpu: (xx, ww, bb, pw, r) => conv(xx, ww, bb, { padding: 1 }, { activation: 'prelu', preluWeight: pw, residual: r }),
            ref: (xx, ww, bb, pw, r) => binary(binary(refConv(xx, ww, bb, { padBefore: [1, 1] }), pw.reshape([4, 1, 1]), fns.prelu), r, (p, q) => p + q),
            domains: [[-1, 1], [-1, 1], [-1, 1], [0, 0.5], [-1, 1]],
            tol: reductionTol(27),
          }));
      });
    }
    it(`${variant}: the forward ends with the pass that sums the partials`, () => {
      setKernelVariant('conv', variant);
      setConvReductionLimits({ loopBudget: 300 });
      const y = F.conv3d(tensor(new Float32Array(2 * 6 * 3 * 4 * 19), [2, 6, 3, 4, 19]), tensor(new Float32Array(6 * 6 * 125), [6, 6, 5, 5, 5]), null, { padding: 2 });
      expect(runtime().lastContext).toMatch(new RegExp(`\\[${variant}, sum of \\d+ partials\\]$`));
      y.dispose();
      setConvReductionLimits();
    });
    it(`${variant}: z sliced under a per-dimension limit of 16 workgroups (12 output channels, 8 inputs)`, async () => {
      setKernelVariant('conv', variant);
      setConvReductionLimits({ loopBudget: 300 });
      const rt = runtime();
      const real = rt.limits;
      const rtw = rt as unknown as { limits: GPUSupportedLimits };
      rtw.limits = new Proxy(real, { get: (t, k) => (k === 'maxComputeWorkgroupsPerDimension' ? 16 : Reflect.get(t, k, t)) });
      try {
        await runConv({ name: 'k5 p2, 8 -> 12 channels', x: [1, 8, 3, 4, 9], w: [12, 8, 5, 5, 5], opts: { padding: 2 }, ref: { padBefore: [2, 2, 2] } });
      } finally {
        rtw.limits = real;
        setConvReductionLimits();
      }
    });
  }
});

describe('the float64 reference gradients (analytic) agree with its finite differences', () => {
  const check = (name: string, xShape: number[], wShape: number[], yFn: (x: Arr, w: Arr) => Arr, dx: (g: Arr, w: Arr) => Arr, dw: (g: Arr, x: Arr) => Arr) =>
    it(name, () => {
      const x = randomArr(xShape, 3);
      const w = randomArr(wShape, 4);
      const g = randomArr(yFn(x, w).shape, 5);
      const all = (n: number) => [...Array(n).keys()];
      const tol = gradTol({ rtol: 1e-6, atol: 1e-6 });
      expectClose(dx(g, w).data, finiteDifference(yFn, [x, w], g, 0, all(x.size)), tol, `${name}: input gradient`);
      expectClose(dw(g, x).data, finiteDifference(yFn, [x, w], g, 1, all(w.size)), tol, `${name}: weight gradient`);
    });
  const o: RefConvOptions = { stride: [2, 1], padBefore: [1, 2], padAfter: [0, 1], dilation: [1, 2], groups: 2 };
  check('conv2d: groups 2, stride [2, 1], asymmetric padding, dilation [1, 2]', [2, 4, 6, 7], [6, 2, 3, 2], (x, w) => refConv(x, w, null, o), (g, w) => convInputGrad(g, w, [2, 4, 6, 7], o), (g, x) => convWeightGrad(g, x, [6, 2, 3, 2], o));
  const t: RefConvTransposeOptions = { stride: [2, 3], padding: [1, 0], outputPadding: [1, 2], dilation: [2, 1], groups: 2 };
  check('convTranspose2d: groups 2, stride [2, 3], padding, outputPadding, dilation', [2, 4, 3, 4], [4, 3, 3, 2], (x, w) => refConvT(x, w, null, t), (g, w) => convTransposeInputGrad(g, w, [2, 4, 3, 4], t), (g, x) => convTransposeWeightGrad(g, x, [4, 3, 3, 2], t));
  it('bias gradient: the sum over batch and space', () => {
    const g = randomArr([2, 3, 4, 5], 6);
    const want = [0, 1, 2].map((c) => {
      let s = 0;
      for (let n = 0; n < 2; n++) for (let j = 0; j < 20; j++) s += g.data[(n * 3 + c) * 20 + j];
      return s;
    });
    expectClose(convBiasGrad(g).data, want, { rtol: 1e-12, atol: 1e-12 }, 'bias gradient');
  });
});

describe('strided transposed conv without the phase decomposition (plain gather)', () => {
  beforeAll(() => setConvTransposePhases(false));
  afterAll(() => setConvTransposePhases(true));
  for (const c of convTCases.filter((t) => t.name.startsWith('V-Net up') || t.name.startsWith('conv3d k3'))) it(c.name, () => runConvT(c));
  it('conv backward to the input through a stride-2 conv', () => runConv(convCases.find((c) => c.name.startsWith('ResNet 3x3'))!));
});

describe('fused epilogue', () => {
  const x = [2, 3, 5, 6];
  const w = [4, 3, 3, 3];
  const tol = reductionTol(27);
  const refOpts: RefConvOptions = { padBefore: [1, 1] };
  const prelu = (y: Arr, a: Arr) => binary(y, a.reshape([a.size, 1, 1]), fns.prelu);
  for (const variant of ['tiled', 'naive', 'direct'] as ConvVariant[]) {
    it(`conv + bias + prelu + residual in one dispatch, backward to all five inputs (${variant})`, () => {
      setKernelVariant('conv', variant);
      return checkOp({
        name: 'conv+bias+prelu+residual',
        shapes: [x, w, [4], [4], [2, 4, 5, 6]],
        gpu: (xx, ww, bb, pw, r) => conv(xx, ww, bb, { padding: 1 }, { activation: 'prelu', preluWeight: pw, residual: r }),
        ref: (xx, ww, bb, pw, r) => binary(prelu(refConv(xx, ww, bb, refOpts), pw), r, (p, q) => p + q),
        domains: [[-1, 1], [-1, 1], [-1, 1], [0, 0.5], [-1, 1]],
        tol,
      }).finally(() => setKernelVariant('conv', null));
    });
  }
  it('residual added before the activation: prelu(conv + b + r) with one slope', () =>
    checkOp({
      name: 'prelu(conv+b+r)',
      shapes: [x, w, [4], [1], [2, 4, 5, 6]],
      gpu: (xx, ww, bb, pw, r) => conv(xx, ww, bb, { padding: 1 }, { activation: 'prelu', preluWeight: pw, residual: r, residualBeforeActivation: true }),
      ref: (xx, ww, bb, pw, r) => binary(binary(refConv(xx, ww, bb, refOpts), r, (p, q) => p + q), pw, fns.prelu),
      domains: [[-1, 1], [-1, 1], [-1, 1], [0, 0.5], [-1, 1]],
      tol,
    }));
  it('a prelu weight that is a slice of a larger tensor (read at its offset)', () =>
    checkOp({
      name: 'conv+prelu(narrowed weight)',
      shapes: [x, w, [4], [7]],
      gpu: (xx, ww, bb, pw) => conv(xx, ww, bb, { padding: 1 }, { activation: 'prelu', preluWeight: pw }),
      ref: (xx, ww, bb, pw) => prelu(refConv(xx, ww, bb, refOpts), new Arr(pw.data.slice(2, 6), [4])),
      prepare: (t, i) => (i === 3 ? F.narrow(t, 0, 2, 4) : t),
      domains: [[-1, 1], [-1, 1], [-1, 1], [0, 0.5]],
      tol,
    }));
  const acts: [string, (y: number) => number][] = [
    ['relu', fns.relu],
    ['elu', fns.elu(0.7)],
    ['gelu', fns.gelu],
  ];
  for (const [act, f] of acts) {
    it(`conv3d + bias + ${act}`, () =>
      checkOp({
        name: `conv+${act}`,
        shapes: [[1, 2, 4, 5, 3], [3, 2, 3, 3, 3], [3]],
        gpu: (xx, ww, bb) => conv(xx, ww, bb, { padding: 1 }, { activation: act as 'relu', alpha: 0.7 }),
        ref: (xx, ww, bb) => refConv(xx, ww, bb, { padBefore: [1, 1, 1] }).map(f),
        tol: reductionTol(54),
      }));
  }
  it('transposed conv + bias + relu + residual', () =>
    checkOp({
      name: 'convT+relu+residual',
      shapes: [[1, 4, 3, 3, 2], [4, 2, 2, 2, 2], [2], [1, 2, 6, 6, 4]],
      gpu: (xx, ww, bb, r) => convTranspose(xx, ww, bb, { stride: 2 }, { activation: 'relu', residual: r }),
      ref: (xx, ww, bb, r) => binary(refConvT(xx, ww, bb, { stride: [2, 2, 2] }).map(fns.relu), r, (p, q) => p + q),
      tol: reductionTol(32),
    }));
});

describe('conv memory', () => {
  it('forwards without gradients free every temporary', async () => {
    const x = tensor(new Float32Array(2 * 4 * 5 * 6).map((_, i) => Math.sin(i)), [2, 4, 5, 6]);
    const w = tensor(new Float32Array(4 * 4 * 9).map((_, i) => Math.cos(i)), [4, 4, 3, 3]);
    const wt = tensor(new Float32Array(4 * 2 * 4).map((_, i) => Math.cos(i)), [4, 2, 2, 2]);
    const pw = tensor([0.1, 0.2, 0.3, 0.4], [4]);
    const run = () =>
      noGrad(() => {
        conv(x, w, pw, { padding: 1 }, { activation: 'prelu', preluWeight: pw, residual: x }).dispose();
        F.convTranspose2d(x, wt, null, { stride: 2 }).dispose();
        // strided operands (copied to dense temporaries inside)
        const xs = F.narrow(x, 1, 1, 2);
        const ws = F.narrow(w, 1, 0, 2);
        F.conv2d(xs, ws, null).dispose();
        xs.dispose();
        ws.dispose();
      });
    run(); // first use creates the shared scratch buffers
    await runtime().sync();
    const before = held().tensors;
    run();
    await runtime().sync();
    expect(held().tensors).toBe(before);
    for (const t of [x, w, wt, pw]) t.dispose();
  });

  it('a training step through conv and transposed conv with fused epilogues leaves nothing behind', async () => {
    const x = tensor(new Float32Array(2 * 4 * 5 * 6).map((_, i) => Math.sin(i)), [2, 4, 5, 6], { requiresGrad: true });
    const w = tensor(new Float32Array(4 * 4 * 9).map((_, i) => Math.cos(i)), [4, 4, 3, 3], { requiresGrad: true });
    const wt = tensor(new Float32Array(4 * 2 * 4).map((_, i) => Math.cos(i)), [4, 2, 2, 2], { requiresGrad: true });
    const b = tensor([0.1, -0.2, 0.3, 0.4], [4], { requiresGrad: true });
    const pw = tensor([0.1, 0.2, 0.3, 0.4], [4], { requiresGrad: true });
    const leaves = [x, w, wt, b, pw];
    await expectStepLeavesNothing(async () => {
      // a strided input and a strided residual (copied to dense temporaries inside)
      const xs = F.narrow(x, 1, 1, 2);
      const ws = F.narrow(w, 1, 0, 2);
      const xt = x.transpose(2, 3);
      const r = xt.transpose(2, 3);
      const bs = b.narrow(0, 0, 2);
      const y1 = conv(x, w, b, { padding: 1 }, { activation: 'prelu', preluWeight: pw, residual: r });
      const y2 = conv(xs, ws, null, {}, { activation: 'gelu' });
      const y3 = convTranspose(x, wt, bs, { stride: 2 }, { activation: 'relu' });
      const parts = [y1.sum(), y2.sum(), y3.sum()];
      const s1 = parts[0].add(parts[1]);
      const loss = s1.add(parts[2]);
      loss.backward();
      for (const t of leaves) await t.grad!.read();
      for (const t of [xs, ws, xt, r, bs, y1, y2, y3, ...parts, s1, loss]) t.dispose();
      for (const t of leaves) t.zeroGrad();
    });
    for (const t of leaves) {
      expect(t.graphUses).toBe(0);
      t.dispose();
    }
  });
});

describe('conv errors and limits', () => {
  it('names the op and shapes on mismatched channels', () => {
    const x = tensor(new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
    const w = tensor(new Float32Array(4 * 2 * 3 * 3), [4, 2, 3, 3]);
    expect(() => F.conv2d(x, w)).toThrow(/conv2d\(\[2, 3, 4, 4\], \[4, 2, 3, 3\]\).*input channels/);
    x.dispose();
    w.dispose();
  });

  it('refuses a tensor over the binding limit with a message naming the limit', () => {
    const rt = runtime();
    const real = rt.limits;
    // A fake adapter whose storage bindings hold at most 4 KiB.
    const fake = new Proxy(real, { get: (t, k) => (k === 'maxStorageBufferBindingSize' ? 4096 : Reflect.get(t, k, t)) });
    const x = tensor(new Float32Array(1 * 1 * 8 * 16 * 16), [1, 1, 8, 16, 16]);
    const w = tensor(new Float32Array(2 * 27), [2, 1, 3, 3, 3]);
    const rtw = rt as unknown as { limits: GPUSupportedLimits };
    rtw.limits = fake;
    let err: Error | null = null;
    let y: Tensor | null = null;
    try {
      y = F.conv3d(x, w, null, { padding: 1 });
    } catch (e) {
      err = e as Error;
    } finally {
      rtw.limits = real;
    }
    expect(y).toBeNull();
    expect(err?.message).toMatch(/conv3d\(\[1, 1, 8, 16, 16\], \[2, 1, 3, 3, 3\]\).*maxStorageBufferBindingSize/);
    x.dispose();
    w.dispose();
  });
});
