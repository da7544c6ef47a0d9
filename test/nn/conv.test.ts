// Convolution modules: PyTorch's state_dict keys and shapes, default initialisation bounds
// (kaiming_uniform with a = sqrt(5) and the matching bias bound), seeded reproducibility, and the
// forward against the float64 reference with the module's own weights.
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed, nn, type Tensor } from '../../src/index.js';
import { expectClose, expectStepLeavesNothing, ready, upload } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { Arr, randomArr } from '../reference/ndarray.js';
import { conv as refConv, convTranspose as refConvT } from '../reference/conv.js';
import { weightStandardize } from '../reference/norm.js';

beforeAll(ready);

const keysAndShapes = (m: nn.Module) => [...m.stateDict()].map(([k, t]) => [k, [...t.shape]]);
const arr = async (t: Tensor) => Arr.from(await t.read(), t.shape);

async function expectUniform(t: Tensor, bound: number, what: string) {
  const v = await t.read();
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  expect(lo, `${what} min`).toBeGreaterThanOrEqual(-bound);
  expect(hi, `${what} max`).toBeLessThanOrEqual(bound);
  // spread over most of the interval, not a constant
  expect(hi - lo, `${what} spread`).toBeGreaterThan(bound);
}

describe('Conv modules', () => {
  it('Conv3d: keys, shapes, init bounds and forward', async () => {
    const m = new nn.Conv3d(2, 4, 3, { padding: 1 });
    expect(keysAndShapes(m)).toEqual([
      ['weight', [4, 2, 3, 3, 3]],
      ['bias', [4]],
    ]);
    const bound = 1 / Math.sqrt(2 * 27);
    await expectUniform(m.weight, bound, 'Conv3d weight');
    await expectUniform(m.bias!, bound, 'Conv3d bias');
    const xa = randomArr([1, 2, 4, 5, 3], 1);
    const y = m.forward(upload(xa));
    const want = refConv(xa, await arr(m.weight), await arr(m.bias!), { padBefore: [1, 1, 1] });
    expectClose(await y.read(), want.data, reductionTol(54), 'Conv3d forward');
  });

  it('Conv2d without bias, Conv1d with groups', () => {
    expect(keysAndShapes(new nn.Conv2d(3, 8, [7, 7], { stride: 2, padding: 3, bias: false }))).toEqual([['weight', [8, 3, 7, 7]]]);
    expect(keysAndShapes(new nn.Conv1d(4, 6, 3, { groups: 2 }))).toEqual([
      ['weight', [6, 2, 3]],
      ['bias', [6]],
    ]);
  });

  it('the seeded generator reproduces the initialisation', async () => {
    manualSeed(42);
    const a = await new nn.Conv2d(2, 3, 3).weight.read();
    manualSeed(42);
    const b = await new nn.Conv2d(2, 3, 3).weight.read();
    expect([...a]).toEqual([...b]);
  });

  it('ConvTranspose3d (V-Net up-conv): weight [in, out/groups, k...], fan-in from dim 1, forward', async () => {
    const m = new nn.ConvTranspose3d(4, 2, 2, { stride: 2 });
    expect(keysAndShapes(m)).toEqual([
      ['weight', [4, 2, 2, 2, 2]],
      ['bias', [2]],
    ]);
    await expectUniform(m.weight, 1 / Math.sqrt(2 * 8), 'ConvTranspose3d weight');
    const xa = randomArr([1, 4, 3, 2, 3], 2);
    const y = m.forward(upload(xa));
    const want = refConvT(xa, await arr(m.weight), await arr(m.bias!), { stride: [2, 2, 2] });
    expectClose(await y.read(), want.data, reductionTol(32), 'ConvTranspose3d forward');
    expect(keysAndShapes(new nn.ConvTranspose2d(8, 4, 2, { stride: 2 }))).toEqual([
      ['weight', [8, 4, 2, 2]],
      ['bias', [4]],
    ]);
  });

  it('StdConv2d standardises its weight at every forward, and trains through it', async () => {
    const m = new nn.StdConv2d(3, 4, 3, { padding: 1, bias: false });
    const xa = randomArr([1, 3, 5, 6], 3);
    const x = upload(xa);
    const y = m.forward(x);
    const want = refConv(xa, weightStandardize(await arr(m.weight), 1e-5), null, { padBefore: [1, 1] });
    expectClose(await y.read(), want.data, reductionTol(27), 'StdConv2d forward');
    y.sum().backward();
    expect(m.weight.grad?.shape).toEqual([4, 3, 3, 3]);
  });
  it('a StdConv2d training step leaves nothing behind', async () => {
    const m = new nn.StdConv2d(3, 4, 3, { padding: 1 });
    const x = upload(randomArr([1, 3, 5, 6], 4));
    await expectStepLeavesNothing(async () => {
      const y = m.forward(x);
      const loss = y.sum();
      loss.backward();
      await m.weight.grad!.read();
      for (const t of [y, loss]) t.dispose();
      m.zeroGrad();
    });
    for (const p of m.parameters()) {
      expect(p.graphUses).toBe(0);
      p.dispose();
    }
    x.dispose();
  });
});
