// TransUNet checkpoints: test/fixtures/transunet_tiny.pth (torch.save(model.state_dict()) of the
// tiny model as train.py saves it, written by transunet_reference.py) loads strictly and gives
// PyTorch's logits; test/fixtures/transunet_tiny_in21k.npz (the ImageNet-21k R50+ViT-B_16.npz layout
// for the tiny encoder: flax names, HWIO kernels, [D, heads, dh] attention kernels, (1,1,1,C)
// GroupNorm parameters, a class token + 3x3 position grid, the unused cls / pre_logits / head)
// initialises the encoder as TransUNet's load_from() does (position table resampled to 2x2), the
// decoder and head keeping their values; R50-ViT-B_16's state_dict equals the 409-key manifest;
// transunetOptionsFromShapes reads config, imgSize, numClasses and nSkip back from the shapes.
// Then the slice-wise inference of src/models/transunet/inference.ts against SciPy and test.py
// with that checkpoint: zoomCubic equals scipy.ndimage.zoom(order=3) up- and downsampling,
// zoomNearest equals zoom(order=0) including its rounding of halves, and segmentSlices on a 3-slice
// 24 x 20 HU volume gives test_single_volume's labels (window [-125, 275], zoom to 32, argmax, zoom
// back) wherever PyTorch's logit margin is not within f32 noise of a tie.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { models, noGrad, weights } from '../../src/index.js';
import type { Module } from '../../src/nn/module.js';
import { expectClose, ready } from '../helpers.js';
import { elementwiseTol, reductionTol } from '../tolerance.js';
import { chainK, expectGolden, fillModule, fixtureBytes, fixtureTensor, golden, values } from './transunet-helpers.js';

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

  it('the options a checkpoint was made with are read from its shapes', async () => {
    const ck = await weights.openCheckpoint(weights.bytesSource(await fixtureBytes('transunet_tiny.pth')));
    const shapes = new Map([...ck.tensors].map(([k, r]) => [k, r.shape]));
    expect(models.transunetOptionsFromShapes(shapes)).toEqual({ config: 'tiny', imgSize: 32, numClasses: 2, nSkip: 3 });
    expect(models.transunetOptionsFromShapes(weights.schemasFor('transunet')[0].tensors)).toEqual({ config: 'R50-ViT-B_16', imgSize: 224, numClasses: 9, nSkip: 3 });
    for (const nSkip of [0, 1, 2]) {
      const m = new models.TransUNet({ config: 'tiny', imgSize: 48, numClasses: 5, nSkip });
      made.push(m);
      expect(models.transunetOptionsFromShapes(m.schema().tensors)).toEqual({ config: 'tiny', imgSize: 48, numClasses: 5, nSkip });
    }
    shapes.delete('segmentation_head.0.weight');
    expect(() => models.transunetOptionsFromShapes(shapes)).toThrow(/no 'segmentation_head\.0\.weight'/);
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

  it('an encoder saved on its own (the page converts the .npz so) fills the encoder with encoderOnly; a plain load refuses it', async () => {
    const trained = tiny();
    await trained.loadWeights(await fixtureBytes('transunet_tiny.pth'));
    const encoder = new Map([...trained.stateDict()].filter(([k]) => !k.startsWith('decoder.') && !k.startsWith('segmentation_head.') && !k.endsWith('num_batches_tracked')));
    const bytes = (await weights.save(encoder))!;
    const m = tiny();
    fillModule(m, 'other.');
    const headBefore = await m.segmentation_head.get(0).getParam('weight')!.read();
    await m.loadWeights(bytes, { encoderOnly: true });
    expect(await m.segmentation_head.get(0).getParam('weight')!.read(), 'the head keeps its weights').toEqual(headBefore);
    const key = 'transformer.encoder.layer.0.attn.query.weight';
    expect(await m.stateDict().get(key)!.read()).toEqual(await trained.stateDict().get(key)!.read());
    await expect(tiny().loadWeights(bytes)).rejects.toThrow(/missing/);
    const extra = new Map(encoder);
    extra.set('segmentation_head.0.weight', trained.stateDict().get('segmentation_head.0.weight')!);
    await expect(tiny().loadWeights((await weights.save(extra))!, { encoderOnly: true })).rejects.toThrow(/unexpected/);
  });

  it('the npz at the grid it was made for (3x3, imgSize 48): the class token is dropped, the grid copied', async () => {
    const m = new models.TransUNet({ config: 'tiny', imgSize: 48, numClasses: 2 });
    made.push(m);
    await m.loadWeights(await fixtureBytes('transunet_tiny_in21k.npz'));
    // transunet_reference.py's npz_values for the table: centre 0, spread 0.2
    const table = values('npz.Transformer/posembed_input/pos_embedding', [1, 10, c.hidden], 0, 0.2);
    expect(Array.from(await m.transformer.embeddings.position_embeddings.read())).toEqual(Array.from(table.subarray(c.hidden)));
  });

  it("R50-ViT-B_16's schema is the 409 keys and shapes of train.py's checkpoint", () => {
    // built with one of the twelve identical encoder layers (a quarter of the 105M parameters): every
    // other key is compared as it is, layers 1-11 as layer 0's keys renumbered
    const r50 = models.TRANSUNET_CONFIGS['R50-ViT-B_16'];
    const m = new models.TransUNet({ config: { ...r50, numLayers: 1 }, imgSize: 224, numClasses: 9, nSkip: 3 });
    made.push(m);
    const manifest = weights.schemasFor('transunet')[0].tensors;
    const own = m.schema().tensors;
    const layer = (k: string) => /^transformer\.encoder\.layer\.(\d+)\./.exec(k)?.[1];
    const expected: [string, number[]][] = [];
    for (const [k, s] of own) {
      if (layer(k) !== '0') expected.push([k, s]);
      else for (let i = 0; i < r50.numLayers; i++) expected.push([k.replace('layer.0.', `layer.${i}.`), s]);
    }
    const byLayerOrder = (xs: [string, number[]][]) => xs.map(([k, s]) => `${k} [${s}]`).sort();
    expect(byLayerOrder(expected)).toEqual(byLayerOrder([...manifest].map(([k, s]) => [k, [...s]])));
    expect(manifest.size).toBe(409);
    // keys outside the encoder layers in the checkpoint's order
    expect([...own.keys()].filter((k) => !layer(k))).toEqual([...manifest.keys()].filter((k) => !layer(k)));
    const count = (pred: (k: string) => boolean) => [...m.namedParameters()].filter(([k]) => pred(k)).reduce((a, [, p]) => a + p.size, 0);
    expect(count(() => true) + (r50.numLayers - 1) * count((k) => layer(k) === '0')).toBe(105_277_081);
  });
});

describe('TransUNet slice-wise inference', () => {
  it('zoomCubic equals scipy.ndimage.zoom(order=3), zoomNearest zoom(order=0)', () => {
    const up = models.zoomCubic(values('input.zoom.small', [9, 12], 0, 1), 9, 12, 20, 17);
    expectClose(up, golden('zoom.cubic.up').data, elementwiseTol(), 'zoom order 3, 9x12 -> 20x17');
    const down = models.zoomCubic(values('input.zoom.big', [20, 17], 0, 1), 20, 17, 9, 12);
    expectClose(down, golden('zoom.cubic.down').data, elementwiseTol(), 'zoom order 3, 20x17 -> 9x12');
    const labels = Array.from({ length: 15 }, (_, i) => i);
    expect(Array.from(models.zoomNearest(labels, 3, 5, 5, 9))).toEqual(Array.from(golden('zoom.nearest').data));
  });

  it("segmentSlices gives test.py's labels on a 3-slice volume (batches of 2)", async () => {
    const m = tiny();
    await m.loadWeights(await fixtureBytes('transunet_tiny.pth'));
    const [nx, ny, nz] = [20, 24, 3];
    const progress: number[] = [];
    const { labels } = await models.segmentSlices(m, values('input.volume', [nz, ny, nx], 50, 300), [nx, ny, nz], { batchSize: 2, onProgress: (p) => progress.push(p.done) });
    expect(progress).toEqual([0, 2, 3]);
    const want = golden('segment.labels').data;
    const margins = golden('segment.margins').data;
    // a label may differ only where the nearest model pixel's margin is a near-tie
    const S = 32;
    const near = (o: number, n: number) => Math.floor((o * (S - 1)) / (n - 1) + 0.5);
    let differ = 0;
    let counted = 0;
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < ny; y++)
        for (let x = 0; x < nx; x++) {
          const i = (z * ny + y) * nx + x;
          const margin = margins[(z * S + near(y, ny)) * S + near(x, nx)];
          if (Math.abs(margin) < 1e-3) continue;
          counted++;
          if (labels[i] !== want[i]) differ++;
        }
    expect(counted).toBeGreaterThan(0.9 * nx * ny * nz);
    expect(differ, `labels differing from test.py's where the margin exceeds 1e-3 (of ${counted})`).toBe(0);
    expect(new Set(labels).size, 'both classes predicted').toBe(2);
  });
});
