// TransUNet checkpoints: test/fixtures/transunet_tiny.pth (torch.save(model.state_dict()) of the
// tiny model as train.py saves it, written by transunet_reference.py) loads strictly and gives
// PyTorch's logits; test/fixtures/transunet_tiny_in21k.npz (the ImageNet-21k R50+ViT-B_16.npz layout
// for the tiny encoder: flax names, HWIO kernels, [D, heads, dh] attention kernels, (1,1,1,C)
// GroupNorm parameters, a class token + 3x3 position grid, the unused cls / pre_logits / head)
// initialises the encoder as TransUNet's load_from() does (position table resampled to 2x2), the
// decoder and head keeping their values; and R50-ViT-B_16's state_dict equals the 409-key manifest.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { models, noGrad, weights } from '../../src/index.js';
import type { Module } from '../../src/nn/module.js';
import { ready } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { chainK, expectGolden, fillModule, fixtureBytes, fixtureTensor } from './transunet-helpers.js';

beforeAll(ready);

const c = models.TRANSUNET_CONFIGS.tiny;
const made: Module[] = [];
const tiny = (numClasses = 2) => {
  const m = new models.TransUNet({ config: 'tiny', numClasses });
  made.push(m);
  return m;
};
afterEach(() => {
  for (const m of made.splice(0)) for (const [, t] of m.stateDict()) t.dispose();
});
const image = () => fixtureTensor('input.tiny.image', [2, 1, 32, 32], 0.5, 0.5).narrow(0, 0, 1);

describe('TransUNet checkpoints', () => {
  it("train.py's .pth loads strictly and reproduces PyTorch's logits", async () => {
    const m = tiny();
    const { format, notes } = await m.loadWeights(await fixtureBytes('transunet_tiny.pth'));
    expect(format).toBe('pth');
    console.log(notes.join('; '));
    m.eval();
    await expectGolden(noGrad(() => m.forward(image())), 'pth.logits', reductionTol(chainK(c, 32)));
  });

  it('a .pth of another layout is refused naming the mis-shaped keys', async () => {
    const m = tiny(3);
    await expect(m.loadWeights(await fixtureBytes('transunet_tiny.pth'))).rejects.toThrow(/segmentation_head\.0\.weight/);
  });

  it('the ImageNet-21k .npz initialises the encoder as load_from() (3x3 position grid resampled to 2x2), the decoder and head keep theirs', async () => {
    const m = tiny();
    fillModule(m, 'npz.');
    const headBefore = await m.segmentation_head.get(0).getParam('weight')!.read();
    const { format, notes } = await m.loadWeights(await fixtureBytes('transunet_tiny_in21k.npz'));
    expect(format).toBe('npz');
    console.log(notes.join('; '));
    expect(await m.segmentation_head.get(0).getParam('weight')!.read()).toEqual(headBefore);
    await expectGolden(m.transformer.embeddings.position_embeddings, 'npz.position_embeddings', reductionTol(4));
    m.eval();
    await expectGolden(noGrad(() => m.forward(image())), 'npz.logits', reductionTol(chainK(c, 32)));
  });

  it("R50-ViT-B_16's schema is the 409 keys and shapes of train.py's checkpoint", () => {
    const m = new models.TransUNet({ config: 'R50-ViT-B_16', imgSize: 224, numClasses: 9, nSkip: 3 });
    made.push(m);
    const manifest = weights.schemasFor('transunet')[0].tensors;
    const own = m.schema().tensors;
    expect([...own.keys()]).toEqual([...manifest.keys()]);
    for (const [k, s] of own) expect(s, k).toEqual(manifest.get(k));
    const trainable = m.parameters().reduce((a, p) => a + p.size, 0);
    expect(trainable).toBe(105_277_081);
  });
});
