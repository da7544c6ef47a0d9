// Normalisation, activation and pooling modules: PyTorch's state_dict keys, shapes and initial
// values; BatchNorm's running statistics and num_batches_tracked across training steps and its
// eval mode; forwards against the float64 references.
import { beforeAll, describe, expect, it } from 'vitest';
import { nn } from '../../src/index.js';
import { expectClose, ready, upload } from '../helpers.js';
import { elementwiseTol, reductionTol } from '../tolerance.js';
import { Arr, randomArr } from '../reference/ndarray.js';
import * as ref from '../reference/norm.js';
import { maxPool2d as refMax } from '../reference/conv.js';
import { binary, fns } from '../reference/ops.js';

beforeAll(ready);

const keysAndShapes = (m: nn.Module) => [...m.stateDict()].map(([k, t]) => [k, [...t.shape]]);

describe('BatchNorm modules', () => {
  it('BatchNorm3d: keys, initial values, running statistics over two steps, then eval', async () => {
    const m = new nn.BatchNorm3d(3, { momentum: 0.2 });
    expect(keysAndShapes(m)).toEqual([
      ['weight', [3]],
      ['bias', [3]],
      ['running_mean', [3]],
      ['running_var', [3]],
      ['num_batches_tracked', []],
    ]);
    const sd = m.stateDict();
    expect([...(await sd.get('weight')!.read())]).toEqual([1, 1, 1]);
    expect([...(await sd.get('bias')!.read())]).toEqual([0, 0, 0]);
    expect([...(await sd.get('running_mean')!.read())]).toEqual([0, 0, 0]);
    expect([...(await sd.get('running_var')!.read())]).toEqual([1, 1, 1]);
    expect(await sd.get('num_batches_tracked')!.item()).toBe(0);

    const xa = randomArr([2, 3, 3, 4, 2], 5, -1, 3);
    const x = upload(xa);
    const tol = reductionTol(48);
    const y = m.forward(x);
    expectClose(await y.read(), ref.batchNorm(xa, null, null, null, null, true).data, tol, 'BatchNorm3d train forward');
    m.forward(x).dispose();
    const first = ref.batchNormRunning(xa, Arr.from([0, 0, 0], [3]), Arr.from([1, 1, 1], [3]), 0.2);
    const step1 = ref.batchNormRunning(xa, first.mean, first.var, 0.2);
    expectClose(await m.runningMean!.read(), step1.mean.data, tol, 'running_mean after 2 steps');
    expectClose(await m.runningVar!.read(), step1.var.data, tol, 'running_var after 2 steps');
    expect(await sd.get('num_batches_tracked')!.item()).toBe(2);

    m.eval();
    const ye = m.forward(x);
    expectClose(await ye.read(), ref.batchNorm(xa, step1.mean, step1.var, null, null, false).data, elementwiseTol(), 'BatchNorm3d eval forward');
    expect(await sd.get('num_batches_tracked')!.item()).toBe(2);
  });

  it('BatchNorm2d keys; a wrong rank names the module', () => {
    const m = new nn.BatchNorm2d(4);
    expect(keysAndShapes(m).map(([k]) => k)).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    expect(() => m.forward(upload(randomArr([2, 4, 3], 1)))).toThrow(/BatchNorm2d: expected a 4-d input/);
  });
});

describe('GroupNorm, LayerNorm, LayerNorm2d, PReLU, MaxPool2d', () => {
  it('keys and shapes', () => {
    expect(keysAndShapes(new nn.GroupNorm(32, 64, { eps: 1e-6 }))).toEqual([
      ['weight', [64]],
      ['bias', [64]],
    ]);
    expect(keysAndShapes(new nn.LayerNorm([4, 5]))).toEqual([
      ['weight', [4, 5]],
      ['bias', [4, 5]],
    ]);
    expect(keysAndShapes(new nn.LayerNorm2d(256))).toEqual([
      ['weight', [256]],
      ['bias', [256]],
    ]);
    expect(keysAndShapes(new nn.PReLU())).toEqual([['weight', [1]]]);
    expect(keysAndShapes(new nn.PReLU(16))).toEqual([['weight', [16]]]);
    expect(keysAndShapes(new nn.MaxPool2d(3, { stride: 2 }))).toEqual([]);
  });

  it('forwards match the references', async () => {
    const xa = randomArr([2, 4, 5, 6], 9);
    const x = upload(xa);
    expectClose(await new nn.GroupNorm(2, 4).forward(x).read(), ref.groupNorm(xa, 2, null, null).data, reductionTol(60), 'GroupNorm');
    expectClose(await new nn.LayerNorm(6).forward(x).read(), ref.layerNorm(xa, 1, null, null).data, reductionTol(6), 'LayerNorm');
    expectClose(await new nn.LayerNorm2d(4).forward(x).read(), ref.layerNorm2d(xa, null, null).data, reductionTol(4), 'LayerNorm2d');
    expectClose(await new nn.PReLU().forward(x).read(), xa.map((v) => fns.prelu(v, 0.25)).data, elementwiseTol(), 'PReLU');
    const slopes = randomArr([4], 3, 0.25, 0.25);
    expectClose(await new nn.PReLU(4).forward(x).read(), binary(xa, slopes.reshape([4, 1, 1]), fns.prelu).data, elementwiseTol(), 'PReLU per channel');
    expectClose(
      await new nn.MaxPool2d(3, { stride: 2, padding: 1 }).forward(x).read(),
      refMax(xa, { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }).data,
      elementwiseTol(),
      'MaxPool2d',
    );
  });
});
