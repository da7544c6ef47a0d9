// TransUNet 'tiny' (every code path of R50-ViT-B_16 at small width: projection and identity units
// in the ResNet, the 1/4 skip's zero padding, two ViT blocks, all four decoder blocks with the
// three skips, the head) against test/fixtures/transunet_reference.py's float64 PyTorch goldens on
// weights and inputs from the shared formula (transunet-helpers.ts): eval logits of a batch of two
// one-channel images, nSkip 0, 1 and 2, a three-channel 48x48 input (3x3 tokens, 11 -> 12 padding),
// and one training step's batch-norm statistics and gradients; input checks. And against the
// float64 reference forward of test/reference/transunet.ts (written from the spec with the reference
// ops, independent of src/): the reference itself equals PyTorch's golden, the GPU logits equal the
// reference, and the GPU's parameter gradients (eval mode) equal central finite differences of the
// reference on a sample of entries from every part (root StdConv, a unit's GN, the projection, the
// patch embedding, attention, MLP, the position table, decoder conv and BN, head).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { models, noGrad } from '../../src/index.js';
import type { Module } from '../../src/nn/module.js';
import { Dropout } from '../../src/nn/dropout.js';
import { expectClose, ready } from '../helpers.js';
import { gradTol, reductionTol } from '../tolerance.js';
import { Arr } from '../reference/ndarray.js';
import { finiteDifference } from '../reference/gradcheck.js';
import { transunetRef } from '../reference/transunet.js';
import { chainK, expectGolden, fillModule, fixtureTensor, golden, values } from './transunet-helpers.js';
import { relErr } from './medsam-helpers.js';

beforeAll(ready);

const c = models.TRANSUNET_CONFIGS.tiny;
const made: Module[] = [];
const build = (o: { imgSize?: number; numClasses: number; nSkip?: number }, prefix = '') => {
  const m = new models.TransUNet({ config: 'tiny', ...o });
  fillModule(m, prefix);
  made.push(m);
  return m.eval();
};
afterEach(() => {
  for (const m of made.splice(0)) for (const [, t] of m.stateDict()) t.dispose();
});
const image = () => fixtureTensor('input.tiny.image', [2, 1, 32, 32], 0.5, 0.5);

describe('TransUNet tiny against PyTorch (float64)', () => {
  it('eval logits of two one-channel 32x32 images (nSkip 3, 4 classes)', async () => {
    const m = build({ numClasses: 4 });
    await expectGolden(noGrad(() => m.forward(image())), 'tiny.eval.logits', reductionTol(chainK(c, 32)));
  });

  it('nSkip 0, 1 and 2: only decoder blocks k < nSkip take a skip', async () => {
    for (const nSkip of [0, 1, 2]) {
      const m = build({ numClasses: 1, nSkip }, `skip${nSkip}.`);
      const y = noGrad(() => m.forward(image().narrow(0, 0, 1)));
      await expectGolden(y, `tiny.skip${nSkip}.logits`, reductionTol(chainK(c, 32)));
    }
  });

  it('a three-channel 48x48 input: 3x3 tokens, block1 11x11 zero-padded to 12x12 for the skip', async () => {
    const m = build({ imgSize: 48, numClasses: 1 }, 'img48.');
    const y = noGrad(() => m.forward(fixtureTensor('input.tiny.image48', [1, 3, 48, 48], 0.5, 0.5)));
    await expectGolden(y, 'tiny.img48.logits', reductionTol(chainK(c, 48)));
  });

  it('training (batch statistics, dropout off): running mean and the gradients of sum(logits * cotangent)', async () => {
    const m = build({ numClasses: 4 }).train();
    for (const [, mod] of m.namedModules()) if (mod instanceof Dropout) mod.training = false;
    const x = fixtureTensor('input.tiny.image', [2, 1, 32, 32], 0.5, 0.5, true);
    const y = m.forward(x);
    await expectGolden(m.decoder.blocks.get(1).conv1.get(1).getBuffer('running_mean')!, 'tiny.train.running_mean', reductionTol(chainK(c, 32)));
    y.mul(fixtureTensor('input.tiny.cotangent', y.shape, 0, 1)).sum().backward();
    const tol = gradTol(reductionTol(2 * chainK(c, 32)));
    await expectGolden(x.grad!, 'tiny.train.grad.input', tol);
    const params = new Map(m.namedParameters());
    for (const k of GRAD_KEYS) await expectGolden(params.get(k)!.grad!, `tiny.train.grad.${k}`, tol);
  });

  it('dropout is active in training (embeddings, MLP) and off in eval', async () => {
    const m = build({ numClasses: 4 });
    const x = image();
    const encoded = () => noGrad(() => m.transformer.forward(x.expand(2, 3, 32, 32)).encoded).read();
    const a = await encoded();
    m.train();
    const b = await encoded();
    m.eval();
    expect(await encoded()).toEqual(a);
    expect(b.some((v, i) => Math.abs(v - a[i]) > 1e-2)).toBe(true);
  });

  it('refuses bad inputs and settings with clear errors', () => {
    const m = build({ numClasses: 4 });
    expect(() => m.forward(fixtureTensor('bad', [1, 2, 32, 32], 0, 1))).toThrow(/input must be \[B, 1 or 3, 32, 32\]/);
    expect(() => m.forward(fixtureTensor('bad', [1, 1, 48, 48], 0, 1))).toThrow(/input must be/);
    expect(() => new models.TransUNet({ config: 'tiny', nSkip: 4 })).toThrow(/nSkip must be 0, 1, 2 or 3/);
    expect(() => new models.TransUNet({ config: 'tiny', imgSize: 40 })).toThrow(/multiple of 16/);
    expect(() => new models.TransUNet({ config: 'R50' as never })).toThrow(/unknown config/);
  });
});

const GRAD_KEYS = [
  'transformer.embeddings.position_embeddings',
  'transformer.embeddings.hybrid_model.root.conv.weight',
  'transformer.embeddings.hybrid_model.root.gn.bias',
  'transformer.embeddings.hybrid_model.body.block1.unit1.gn_proj.weight',
  'transformer.embeddings.hybrid_model.body.block2.unit2.gn2.bias',
  'transformer.embeddings.hybrid_model.body.block3.unit1.gn_proj.bias',
  'transformer.embeddings.patch_embeddings.bias',
  'transformer.encoder.layer.0.attn.query.weight',
  'transformer.encoder.layer.1.ffn.fc1.bias',
  'transformer.encoder.encoder_norm.weight',
  'decoder.blocks.3.conv1.0.weight',
  'decoder.blocks.0.conv1.1.weight',
  'decoder.blocks.2.conv2.0.weight',
  'decoder.blocks.3.conv2.1.bias',
  'segmentation_head.0.bias',
];

const refConfig = { blockUnits: c.blockUnits, gnGroups: c.gnGroups, numHeads: c.numHeads, numLayers: c.numLayers, nSkip: 3 };
function buildWithRef(numClasses: number): { m: models.TransUNet; params: Map<string, Arr> } {
  const m = build({ numClasses });
  const params = new Map<string, Arr>();
  for (const [k, t] of m.stateDict()) if (!k.endsWith('num_batches_tracked')) params.set(k, Arr.from(values(k, t.shape), t.shape));
  return { m, params };
}

describe('TransUNet tiny against its float64 reference forward', () => {
  it('the reference equals PyTorch, and the GPU logits equal the reference', async () => {
    const { m, params } = buildWithRef(4);
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
    const { m, params } = buildWithRef(2);
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
