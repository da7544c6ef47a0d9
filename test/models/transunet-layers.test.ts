// Every distinct layer shape of TransUNet R50-ViT-B_16 at its full width on a small grid, against
// test/fixtures/transunet_reference.py's float64 PyTorch goldens (weights and inputs from the shared
// formula of transunet-helpers.ts): the root (7x7/2 StdConv 3 -> 64, GN 32, ReLU) on 8x8, each
// bottleneck unit shape (block1 64 -> 256 with projection and 256 -> 256; block2 256 -> 512 /2 and
// 512; block3 512 -> 1024 /2 and 1024) on 1-3 pixel grids, the patch embedding (1x1 1024 -> 768), a
// ViT block (768, 12 heads, MLP 3072) on 2x2 tokens, and the whole decoder (conv_more 768 -> 512,
// blocks (512 + 512 -> 256), (256 + 256 -> 128), (128 + 64 -> 64), (64 -> 16)) with the head
// (16 -> 9) on a 1x1 token grid; backward of block2.unit1 and of decoder + head.
import { afterEach, beforeAll, describe, it } from 'vitest';
import { models, nn, noGrad } from '../../src/index.js';
import type { Module } from '../../src/nn/module.js';
import { ready } from '../helpers.js';
import { gradTol, reductionTol } from '../tolerance.js';
import { expectGolden, fillModule, fixtureTensor } from './transunet-helpers.js';

beforeAll(ready);

const c = models.TRANSUNET_CONFIGS['R50-ViT-B_16'];
const D = c.hidden;
const made: Module[] = [];
const build = <M extends Module>(m: M, prefix: string): M => {
  fillModule(m, prefix);
  m.eval();
  made.push(m);
  return m;
};
afterEach(() => {
  for (const m of made.splice(0)) for (const [, t] of m.stateDict()) t.dispose();
});

// (block, unit, input shape); unit chains: conv1 cin, GN, conv2 9 cmid, GN, conv3 cmid, GN
const UNITS: [number, number, number[], number, number, number, number][] = [
  [1, 1, [1, 64, 2, 2], 64, 256, 64, 1],
  [1, 2, [1, 256, 2, 2], 256, 256, 64, 1],
  [2, 1, [1, 256, 3, 3], 256, 512, 128, 2],
  [2, 2, [1, 512, 2, 2], 512, 512, 128, 1],
  [3, 1, [1, 512, 3, 3], 512, 1024, 256, 2],
  [3, 2, [1, 1024, 1, 1], 1024, 1024, 256, 1],
];
const unitK = (cin: number, cout: number, cmid: number, area: number) => cin + 9 * cmid + cmid + ((2 * cmid + cout) / 32) * area;
const blockK = (T: number) => D + 3 * D + D / c.numHeads + 2 * T + D + D + c.mlpDim;

describe('TransUNet R50-ViT-B_16 layers at full width against PyTorch (float64)', () => {
  it('root: StdConv 7x7/2 3 -> 64, GroupNorm(32), ReLU on 8x8', async () => {
    const root = build(new models.ResNetRoot(64), 'r50.hybrid.root.');
    const y = noGrad(() => root.forward(fixtureTensor('input.r50.image', [1, 3, 8, 8], 0.5, 0.5)));
    await expectGolden(y, 'r50.root', reductionTol(3 * 49 + 2 * 16));
  });

  it('each bottleneck unit shape (projection units with stride and per-channel GN)', async () => {
    for (const [b, u, shape, cin, cout, cmid, s] of UNITS) {
      const unit = build(new models.PreActBottleneck(cin, cout, cmid, s), `r50.hybrid.body.block${b}.unit${u}.`);
      const y = noGrad(() => unit.forward(fixtureTensor(`input.r50.block${b}.unit${u}`, shape, 0, 1)));
      const area = Math.ceil(shape[2] / s) ** 2;
      await expectGolden(y, `r50.block${b}.unit${u}`, reductionTol(unitK(cin, cout, cmid, area)));
    }
  });

  it('block2.unit1 backward: the input gradient and GN parameters (weight standardisation, stride 2, projection)', async () => {
    const unit = build(new models.PreActBottleneck(256, 512, 128, 2), 'r50.hybrid.body.block2.unit1.');
    const x = fixtureTensor('input.r50.block2.unit1', [1, 256, 3, 3], 0, 1, true);
    const y = unit.forward(x);
    y.mul(fixtureTensor('input.r50.unit_cotangent', y.shape, 0, 1)).sum().backward();
    const tol = gradTol(reductionTol(2 * unitK(256, 512, 128, 4)));
    await expectGolden(x.grad!, 'r50.block2.unit1.grad.input', tol);
    const params = new Map(unit.namedParameters());
    for (const k of ['gn1.weight', 'gn2.bias', 'gn3.weight', 'gn_proj.bias']) await expectGolden(params.get(k)!.grad!, `r50.block2.unit1.grad.${k}`, tol);
  });

  it('patch embedding: 1x1 conv 1024 -> 768 with bias', async () => {
    const pe = build(new nn.Conv2d(1024, D, 1), 'r50.embeddings.patch_embeddings.');
    const y = noGrad(() => pe.forward(fixtureTensor('input.r50.map', [1, 1024, 2, 2], 0, 1)));
    await expectGolden(y, 'r50.patch_embeddings', reductionTol(1024));
  });

  it('ViT block: hidden 768, 12 heads, MLP 3072 on 4 tokens', async () => {
    // forward only (time): the backward of its linear shapes (768, MLP 3072) is checked by
    // medsam-layers.test.ts's windowed block, attention backward at 12 heads of 64 by the op tests,
    // and this block's own backward path by transunet.test.ts on the tiny model
    const blk = build(new models.TransUNetBlock(D, c.numHeads, c.mlpDim, c.dropoutRate), 'r50.block.');
    const y = noGrad(() => blk.forward(fixtureTensor('input.r50.tokens', [1, 4, D], 0, 1)));
    await expectGolden(y, 'r50.vit_block', reductionTol(blockK(4)));
  });

  it('decoder (conv_more and the four blocks with skips 512, 256, 64) and head to 9 classes on a 1x1 token grid, forward and backward', async () => {
    const dec = build(new models.DecoderCup({ hidden: D, headChannels: c.headChannels, decoderChannels: c.decoderChannels, skipChannels: c.skipChannels, nSkip: 3 }), 'r50.decoder.');
    const head = build(new models.SegmentationHead(16, 9), 'r50.segmentation_head.');
    for (const [, p] of [...dec.namedParameters(), ...head.namedParameters()]) if (p.ndim === 4) p.requiresGrad = false;
    const tokens = fixtureTensor('input.r50.decoder_tokens', [1, 1, D], 0, 1, true);
    const skips = [[1, 512, 2, 2], [1, 256, 4, 4], [1, 64, 8, 8]].map((s, i) => fixtureTensor(`input.r50.skip${i}`, s, 0, 1, i === 0));
    const logits = head.forward(dec.forward(tokens, skips));
    const K = 9 * D + (4 + 9 * 1024 + 9 * 256) + (4 + 9 * 512 + 9 * 128) + (4 + 9 * 192 + 9 * 64) + (4 + 9 * 64 + 9 * 16) + 9 * 16;
    await expectGolden(logits, 'r50.head', reductionTol(K));
    logits.mul(fixtureTensor('input.r50.head_cotangent', logits.shape, 0, 1)).sum().backward();
    const tol = gradTol(reductionTol(2 * K));
    await expectGolden(tokens.grad!, 'r50.decoder.grad.tokens', tol);
    await expectGolden(skips[0].grad!, 'r50.decoder.grad.skip0', tol);
    const params = new Map(dec.namedParameters());
    for (const k of ['conv_more.1.weight', 'blocks.0.conv1.1.bias', 'blocks.1.conv2.1.weight', 'blocks.3.conv1.1.bias']) await expectGolden(params.get(k)!.grad!, `r50.decoder.grad.${k}`, tol);
    await expectGolden(head.get(0).getParam('bias')!.grad!, 'r50.head.grad.bias', tol);
  });
});
