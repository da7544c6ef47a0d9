// TransUNet tiny against the float64 reference forward of test/reference/transunet.ts (written from
// the spec with the reference ops, independent of src/): the reference itself equals PyTorch's
// golden, the GPU logits equal the reference, and the GPU's parameter gradients (eval mode) equal
// central finite differences of the reference on a sample of entries of parameters from every
// part (root StdConv, a unit's GN, the projection, the patch embedding, attention, MLP, the position
// table, decoder conv and BN, head).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { models, noGrad } from '../../src/index.js';
import type { Module } from '../../src/nn/module.js';
import { expectClose, ready } from '../helpers.js';
import { gradTol, reductionTol } from '../tolerance.js';
import { Arr } from '../reference/ndarray.js';
import { finiteDifference } from '../reference/gradcheck.js';
import { transunetRef } from '../reference/transunet.js';
import { chainK, fillModule, fixtureTensor, golden, values } from './transunet-helpers.js';
import { relErr } from './medsam-helpers.js';

beforeAll(ready);

const c = models.TRANSUNET_CONFIGS.tiny;
const refConfig = { blockUnits: c.blockUnits, gnGroups: c.gnGroups, numHeads: c.numHeads, numLayers: c.numLayers, nSkip: 3 };
const made: Module[] = [];
afterEach(() => {
  for (const m of made.splice(0)) for (const [, t] of m.stateDict()) t.dispose();
});

function build(numClasses: number): { m: models.TransUNet; params: Map<string, Arr> } {
  const m = new models.TransUNet({ config: 'tiny', numClasses });
  fillModule(m);
  made.push(m);
  const params = new Map<string, Arr>();
  for (const [k, t] of m.stateDict()) if (!k.endsWith('num_batches_tracked')) params.set(k, Arr.from(values(k, t.shape), t.shape));
  return { m: m.eval(), params };
}

describe('TransUNet tiny against its float64 reference forward', () => {
  it('the reference equals PyTorch, and the GPU logits equal the reference', async () => {
    const { m, params } = build(4);
    const x = Arr.from(values('input.tiny.image', [2, 1, 32, 32], 0.5, 0.5), [2, 1, 32, 32]);
    const ref = transunetRef(x, params, refConfig);
    const g = golden('tiny.eval.logits');
    expect(ref.shape).toEqual(g.shape);
    const refErr = relErr(ref.f32(), g.data);
    console.log(`reference vs PyTorch: ${refErr.toExponential(2)}`);
    expectClose(ref.data, g.data, { rtol: 1e-6, atol: 1e-6 }, 'reference vs PyTorch golden');
    const y = await noGrad(() => m.forward(fixtureTensor('input.tiny.image', [2, 1, 32, 32], 0.5, 0.5))).read();
    console.log(`GPU vs reference: ${relErr(y, ref.data).toExponential(2)}`);
    expectClose(y, ref.data, reductionTol(chainK(c, 32)), 'GPU logits vs reference');
  });

  it('parameter gradients equal finite differences of the reference', async () => {
    const { m, params } = build(2);
    const shape = [1, 1, 32, 32];
    const x = Arr.from(values('input.tiny.image', shape, 0.5, 0.5), shape);
    const y = m.forward(fixtureTensor('input.tiny.image', shape, 0.5, 0.5));
    const cotVals = values('input.tiny.fd_cotangent', y.shape, 0, 1);
    y.mul(fixtureTensor('input.tiny.fd_cotangent', y.shape, 0, 1)).sum().backward();
    const cot = Arr.from(cotVals, y.shape);
    const gpu = new Map(m.namedParameters());
    const tol = gradTol(reductionTol(2 * chainK(c, 32)));
    for (const [key, fixed] of SAMPLE) {
      const p = params.get(key)!;
      const got = await gpu.get(key)!.grad!.read();
      // the fixed entries and the GPU's largest one (so a dead ReLU channel cannot make the sample vacuous)
      let top = 0;
      for (let i = 0; i < got.length; i++) if (Math.abs(got[i]) > Math.abs(got[top])) top = i;
      const idx = [...fixed, top];
      const f = (v: Arr) => transunetRef(x, new Map(params).set(key, v), refConfig);
      const fd = finiteDifference(f, [p], cot, 0, idx);
      const sel = idx.map((i) => got[i]);
      // the whole gradient's scale sets the absolute part of the tolerance
      let scale = 0;
      for (const v of got) scale = Math.max(scale, Math.abs(v));
      expect(fd.some((v) => v !== 0), `${key}: a sample with a nonzero gradient`).toBe(true);
      console.log(`${key} [${idx}]: GPU ${Array.from(sel, (v) => v.toExponential(3))} FD ${Array.from(fd, (v) => v.toExponential(3))}`);
      for (let j = 0; j < idx.length; j++) {
        expect(Math.abs(sel[j] - fd[j]), `${key}[${idx[j]}]: GPU ${sel[j]}, finite difference ${fd[j]}`).toBeLessThanOrEqual(tol.atol * scale + tol.rtol * Math.abs(fd[j]) + 1e-6);
      }
    }
  });
});

// per parameter: fixed entries (besides the GPU's largest)
const SAMPLE: [string, number[]][] = [
  ['transformer.embeddings.hybrid_model.root.conv.weight', [611]],
  ['transformer.embeddings.hybrid_model.body.block2.unit1.gn2.weight', [3]],
  ['transformer.embeddings.hybrid_model.body.block3.unit1.downsample.weight', []],
  ['transformer.embeddings.patch_embeddings.weight', []],
  ['transformer.embeddings.position_embeddings', [5]],
  ['transformer.encoder.layer.0.attn.key.weight', []],
  ['transformer.encoder.layer.1.ffn.fc2.weight', []],
  ['decoder.conv_more.0.weight', []],
  ['decoder.blocks.1.conv1.1.bias', []],
  ['segmentation_head.0.weight', []],
];
