// Every convolution layer shape of the V-Net configurations the project ships (VNET_PRESETS: paper,
// monai, tiny), at its full channel count and a small volume, against the float64 reference:
// forward, and the input, weight and bias gradients against the reference's analytic backward
// (test/reference/conv.ts). The shapes are read from the models themselves (their Conv3d and
// ConvTranspose3d modules): the input 5x5x5 conv, the 5x5x5 LUConvs at each width, the 2x2x2
// stride-2 down convs, the 2x2x2 stride-2 transposed up convs, out_tr's 5x5x5 conv and its 1x1x1
// conv. Each runs once, at the volume its depth has for a 64^3 patch but at most 8^3 (so the
// 256-channel LUConv at 4^3 and the 128-channel one at 8^3, the sizes where wide 5x5x5 layers once
// came out wrong on llvmpipe without an error), with batch 1 as the paper trains.
// Also: the weight gradient of out_tr.conv1's shape (32 -> 2 channels) over a long, cancelling
// reduction (batch 1, 32^3) near float32 precision, with each kernel variant.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, models, type Tensor } from '../../src/index.js';
import { Conv3d, ConvTranspose3d } from '../../src/nn/conv.js';
import { type ConvVariant } from '../../src/ops/conv.js';
import { setKernelVariant } from '../../src/gpu/variants.js';
import { expectClose, ready, upload } from '../helpers.js';
import { reductionTol, type Tolerance } from '../tolerance.js';
import { Arr, randomArr } from '../reference/ndarray.js';
import {
  conv as refConv,
  convBiasGrad,
  convInputGrad,
  convTranspose as refConvT,
  convTransposeInputGrad,
  convTransposeWeightGrad,
  convWeightGrad,
} from '../reference/conv.js';
import { disposeNet } from './vnet-helpers.js';

// The layer list is read from the models when the file is collected, so the device opens first.
await ready();
beforeAll(ready);

interface Layer {
  transposed: boolean;
  /** the weight's shape: [Cout, Cin, k, k, k], or [Cin, Cout, k, k, k] for the transposed conv */
  w: number[];
  stride: number;
  padding: number;
  /** whether any preset's layer of this shape has a bias (a bias-free one differs only by that add) */
  bias: boolean;
  /** the input's edge (a cube) */
  size: number;
  /** preset: module name of every layer with this shape */
  names: string[];
}

/** The depth of a layer's input (0 = full resolution) from its module name (vnet.ts's topology). */
function depthOf(name: string): number {
  const m = /^(down|up)_tr(\d+)\.(down_conv|up_conv|ops)\b/.exec(name);
  if (!m) return 0; // in_tr, out_tr
  const level = Math.log2(Number(m[2]) / 32); // the paper's channel count in the name: 32 -> 0 ... 256 -> 3
  if (m[1] === 'down') return m[3] === 'down_conv' ? level : level + 1;
  return m[3] === 'up_conv' ? level + 1 : level;
}

const int = (v: unknown, dflt: number): number => {
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw new Error(`vnet-layers: expected an int option, got ${JSON.stringify(v)}`);
  return v;
};

/** The distinct conv layer shapes of every preset (bias or not), each at the smallest input volume it gets. */
function layerShapes(): Layer[] {
  const byKey = new Map<string, Layer>();
  for (const preset of Object.keys(models.VNET_PRESETS) as models.VNetPreset[]) {
    const net = new models.VNet({ preset });
    for (const [name, m] of net.namedModules()) {
      if (!(m instanceof Conv3d || m instanceof ConvTranspose3d)) continue;
      const transposed = m instanceof ConvTranspose3d;
      const w = [...m.weight.shape];
      const stride = int(m.options.stride, 1);
      const padding = int(m.options.padding, 0);
      const bias = m.bias !== null;
      const size = Math.min(8, 64 >> depthOf(name));
      const key = `${transposed} ${w} ${stride} ${padding}`;
      const known = byKey.get(key);
      if (known) {
        known.size = Math.min(known.size, size);
        known.bias ||= bias;
        known.names.push(`${preset}: ${name}`);
      } else byKey.set(key, { transposed, w, stride, padding, bias, size, names: [`${preset}: ${name}`] });
    }
    disposeNet(net);
  }
  return [...byKey.values()];
}

const vol = (s: readonly number[]) => s.slice(2).reduce((a, b) => a * b, 1);

async function expectGrad(t: Tensor | null, want: Arr, tol: Tolerance, what: string): Promise<void> {
  expect(t, `${what}: has a gradient`).not.toBeNull();
  expect(t!.shape, `${what}: shape`).toEqual(want.shape);
  expectClose(await t!.read(), want.data, tol, what);
}

/** Forward and the three gradients of one layer vs the float64 reference (every wrong one reported). */
async function checkLayer(c: Layer, seed: number): Promise<void> {
  const failures: string[] = [];
  const soft = async (check: () => Promise<void> | void) => {
    try {
      await check();
    } catch (e) {
      failures.push((e as Error).message);
    }
  };
  const k = c.w[2];
  const kvol = k * k * k;
  const [cin, cout] = c.transposed ? [c.w[0], c.w[1]] : [c.w[1], c.w[0]];
  const x = randomArr([1, cin, c.size, c.size, c.size], seed);
  const w = randomArr(c.w, seed + 1);
  const b = c.bias ? randomArr([cout], seed + 2) : null;
  const xt = upload(x, true);
  const wt = upload(w, true);
  const bt = b ? upload(b, true) : null;
  const s3 = [c.stride, c.stride, c.stride];
  const p3 = [c.padding, c.padding, c.padding];
  const label = `${c.transposed ? 'convTranspose3d' : 'conv3d'}(x [1, ${cin}, ${c.size}^3], w [${c.w}], stride ${c.stride}, padding ${c.padding}${c.bias ? ', bias' : ''})`;
  const y = c.transposed ? F.convTranspose3d(xt, wt, bt, { stride: c.stride, padding: c.padding }) : F.conv3d(xt, wt, bt, { stride: c.stride, padding: c.padding });
  const want = c.transposed ? refConvT(x, w, b, { stride: s3, padding: p3 }) : refConv(x, w, b, { stride: s3, padBefore: p3 });
  expect(y.shape, `${label}: output shape`).toEqual(want.shape);
  const got = await y.read();
  await soft(() => expectClose(got, want.data, reductionTol(cin * kvol), `${label} forward`));
  const gy = randomArr(want.shape, seed + 3);
  const g = upload(gy);
  y.backward(g);
  if (c.transposed) {
    const o = { stride: s3, padding: p3 };
    await soft(() => expectGrad(xt.grad, convTransposeInputGrad(gy, w, x.shape, o), reductionTol(cout * kvol), `${label} input gradient`));
    await soft(() => expectGrad(wt.grad, convTransposeWeightGrad(gy, x, c.w, o), reductionTol(vol(x.shape)), `${label} weight gradient`));
  } else {
    const o = { stride: s3, padBefore: p3 };
    await soft(() => expectGrad(xt.grad, convInputGrad(gy, w, x.shape, o), reductionTol(cout * kvol), `${label} input gradient`));
    await soft(() => expectGrad(wt.grad, convWeightGrad(gy, x, c.w, o), reductionTol(vol(want.shape)), `${label} weight gradient`));
  }
  if (bt) await soft(() => expectGrad(bt.grad, convBiasGrad(gy), reductionTol(vol(want.shape)), `${label} bias gradient`));
  for (const t of [xt, wt, bt, y, g]) {
    t?.grad?.dispose();
    t?.dispose();
  }
  if (failures.length) expect.fail(failures.join('\n'));
}

describe('V-Net layers at full width vs the float64 reference (forward, input, weight and bias gradients)', () => {
  const layers = layerShapes();
  it('finds every kind of layer in the presets', () => {
    const kinds = new Set(layers.map((l) => `${l.transposed ? 'up' : l.stride === 2 ? 'down' : `k${l.w[2]}`}`));
    expect([...kinds].sort()).toEqual(['down', 'k1', 'k5', 'up']);
    // the paper's widths are all there: 5x5x5 convs at 16 (input), 32, 64, 128 and 256 channels
    const k5 = new Set(layers.filter((l) => l.w[2] === 5).map((l) => l.w[0]));
    for (const c of [16, 32, 64, 128, 256, 2]) expect(k5.has(c), `a 5x5x5 conv with ${c} output channels`).toBe(true);
  });
  layers.forEach((c, i) => {
    const shape = `${c.transposed ? 'transposed ' : ''}[${c.w}]${c.stride > 1 ? ` s${c.stride}` : ''}${c.padding ? ` p${c.padding}` : ''}${c.bias ? ' +bias' : ''} at ${c.size}^3`;
    it(`${shape} (${c.names.length > 3 ? `${c.names.slice(0, 3).join(', ')} and ${c.names.length - 3} more` : c.names.join(', ')})`, () => checkLayer(c, 1000 + 10 * i));
  });
});

describe('long weight-gradient reduction near float32 precision', () => {
  // The weight gradient of V-Net's out_tr.conv1 (5x5x5, 32 -> 2 channels) at 32^3, batch 1: each
  // entry sums up to 32,768 products, of positive inputs (post-activation, mean 1) and a cotangent
  // with zero mean per channel (as batch norm's backward makes it), so the sum cancels. Every kernel
  // variant sums chunks of bounded length and then the chunks' partials pairwise, which keeps it
  // within a few f32 roundings of the float64 sum (measured at most 3e-6 of the largest entry on
  // SwiftShader and llvmpipe; one sequential sum over the whole reduction, as the naive kernel did,
  // was 8e-6 off). The tolerance is that, not reductionTol's sqrt(K) growth (1.4e-3 here).
  const tol: Tolerance = { rtol: 5e-6, atol: 5e-6 };
  afterAll(() => setKernelVariant('conv', null));
  for (const variant of ['naive', 'tiled', 'direct'] as ConvVariant[]) {
    it(`${variant}: conv3d [1, 32, 32^3] -> 2 channels, k5 p2: weight gradient vs float64 within 5e-6 of its largest entry`, async () => {
      setKernelVariant('conv', variant);
      const n = 32;
      const x = randomArr([1, 32, n, n, n], 71, 0, 2);
      const w = randomArr([2, 32, 5, 5, 5], 72, -0.1, 0.1);
      const gy = zeroMeanPerChannel(randomArr([1, 2, n, n, n], 73, 0, 1));
      const xt = upload(x);
      const wt = upload(w, true);
      const y = F.conv3d(xt, wt, null, { padding: 2 });
      const g = upload(gy);
      y.backward(g);
      await expectGrad(wt.grad, convWeightGrad(gy, x, w.shape, { padBefore: [2, 2, 2] }), tol, `${variant}: conv3d(32 -> 2, 32^3) weight gradient`);
      for (const t of [xt, wt, y, g]) {
        t.grad?.dispose();
        t.dispose();
      }
    });
  }
});

/** a [N, C, ...] with each (n, c) row's mean subtracted (in float64, then rounded to f32). */
function zeroMeanPerChannel(a: Arr): Arr {
  const rows = a.shape[0] * a.shape[1];
  const v = a.size / rows;
  const out = new Float64Array(a.data);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < v; j++) m += out[r * v + j];
    m /= v;
    for (let j = 0; j < v; j++) out[r * v + j] = Math.fround(out[r * v + j] - m);
  }
  return new Arr(out, a.shape);
}
