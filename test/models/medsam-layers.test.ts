// Every distinct layer shape of MedSAM vit_b at its full width on a small grid, against
// test/fixtures/medsam_reference.py's float64 PyTorch goldens (weights and inputs from the shared
// formula of medsam-helpers.ts): the patch embedding (16x16, 3 -> 768) on a 2x2 patch grid, a
// windowed block (768 wide, 12 heads of 64, window 14 with its [27, 64] tables: the 3x3 grid is
// zero-padded to one 14x14 window, so 187 of its 196 tokens are padding), a global block on the 3x3
// grid, the neck (768 -> 256, 3x3 256 -> 256, LayerNorm2d), the prompt encoder at 256 (box, 16x16
// mask input through mask_downscaling 1 -> 4 -> 16 -> 256) and the mask decoder at 256 (8 heads, MLP
// 2048, cross-attention at 128, upscaling 256 -> 64 -> 32, four hypernetwork MLPs, the IoU head) on
// a 4x4 embedding grid; and the backward of the windowed block and of the decoder.
import { afterEach, beforeAll, describe, it } from 'vitest';
import { models, noGrad, tensor, type Tensor } from '../../src/index.js';
import type { Module } from '../../src/nn/module.js';
import { ready } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { expectGolden, fillModule, fixtureTensor } from './medsam-helpers.js';

beforeAll(ready);

const c = models.MEDSAM_CONFIGS.vit_b;
const D = c.encoderEmbedDim;
const P = c.promptEmbedDim;
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

// The chain of f32 sums behind an output, counted as in medsam.test.ts.
const blockK = (keys: number) => 3 * D + D / c.encoderNumHeads + 2 * keys + D + D + D * c.mlpRatio;

describe('MedSAM vit_b layers at full width against PyTorch (float64)', () => {
  const grid = 3;
  const tokens = () => fixtureTensor('input.vit_b.tokens', [1, grid, grid, D], 0, 1);

  it('patch embedding: 16x16 stride 16, 3 -> 768', async () => {
    const pe = build(new models.PatchEmbed(c.patchSize, 3, D), 'vit_b.patch_embed.');
    const y = noGrad(() => pe.forward(fixtureTensor('input.vit_b.image', [1, 3, 32, 32], 0.5, 0.5)));
    await expectGolden(y, 'vit_b.patch_embed.out', reductionTol(3 * 16 * 16));
  });

  it('windowed block: width 768, 12 heads, window 14 (a 3x3 grid padded to 14x14)', async () => {
    const blk = build(new models.ImageEncoderBlock(D, c.encoderNumHeads, c.mlpRatio, c.windowSize, [grid, grid]), 'vit_b.block_windowed.');
    await expectGolden(noGrad(() => blk.forward(tokens())), 'vit_b.block_windowed.out', reductionTol(blockK(c.windowSize ** 2)));
  });

  it('windowed block backward: the input gradient, the qkv bias (padded tokens reach it as keys and values) and both tables', async () => {
    const blk = build(new models.ImageEncoderBlock(D, c.encoderNumHeads, c.mlpRatio, c.windowSize, [grid, grid]), 'vit_b.block_windowed.');
    // the weight matrices' gradients (plain linear backward, covered by the tiny model) are not
    // needed here and would triple the time on SwiftShader
    for (const [k, p] of blk.namedParameters()) if (p.ndim === 2 && !k.includes('rel_pos')) p.requiresGrad = false;
    const x = fixtureTensor('input.vit_b.tokens', [1, grid, grid, D], 0, 1, true);
    const y = blk.forward(x);
    y.mul(fixtureTensor('input.vit_b.cotangent', y.shape, 0, 1)).sum().backward();
    const tol = reductionTol(2 * blockK(c.windowSize ** 2));
    await expectGolden(x.grad!, 'vit_b.block_windowed.grad.input', tol);
    const params = new Map(blk.namedParameters());
    for (const k of ['attn.qkv.bias', 'attn.rel_pos_h', 'attn.rel_pos_w']) await expectGolden(params.get(k)!.grad!, `vit_b.block_windowed.grad.${k}`, tol);
  });

  it('global block: width 768, 12 heads, on the 3x3 grid', async () => {
    const blk = build(new models.ImageEncoderBlock(D, c.encoderNumHeads, c.mlpRatio, 0, [grid, grid]), 'vit_b.block_global.');
    await expectGolden(noGrad(() => blk.forward(tokens())), 'vit_b.block_global.out', reductionTol(blockK(grid * grid)));
  });

  it('neck: 1x1 768 -> 256, LayerNorm2d, 3x3 256 -> 256, LayerNorm2d', async () => {
    const enc = new models.ImageEncoderViT({ imgSize: 16 * grid, patchSize: 16, inChans: 3, embedDim: D, depth: 0, numHeads: c.encoderNumHeads, mlpRatio: c.mlpRatio, outChans: P, windowSize: c.windowSize, globalAttnIndexes: [] });
    made.push(enc);
    const neck = build(enc.neck, 'vit_b.neck.');
    const y = noGrad(() => neck.forward(tokens().permute(0, 3, 1, 2)));
    await expectGolden(y, 'vit_b.neck.out', reductionTol(D + P + 9 * P + P));
  });

  it('prompt encoder and mask decoder at 256 on a 4x4 embedding grid (box and mask prompt, multimask)', async () => {
    const g = 4;
    const pe = build(new models.PromptEncoder({ embedDim: P, imageEmbeddingSize: [g, g], inputImageSize: [16 * g, 16 * g], maskInChans: c.maskInChans }), 'vit_b.prompt_encoder.');
    const transformer = new models.TwoWayTransformer(c.decoderDepth, P, c.decoderNumHeads, c.decoderMlpDim, c.attentionDownsampleRate);
    const dec = build(new models.MaskDecoder(transformer, { transformerDim: P, numMultimaskOutputs: c.numMultimaskOutputs, iouHeadDepth: c.iouHeadDepth, iouHeadHiddenDim: c.iouHeadHiddenDim }), 'vit_b.mask_decoder.');
    const emb = fixtureTensor('input.vit_b.embedding', [1, P, g, g], 0, 1, true);
    const masks = fixtureTensor('input.vit_b.mask', [1, 1, 4 * g, 4 * g], 0, 4);
    const { sparse, dense } = noGrad(() => pe.forward({ boxes: tensor([[10.0, 15.5, 50.0, 45.0]]), masks }));
    const peTol = reductionTol(2 + 30);
    await expectGolden(sparse, 'vit_b.prompt.sparse', peTol);
    await expectGolden(dense, 'vit_b.prompt.dense', reductionTol(4 + 4 + 16 * 4 + 16 + 16));
    const densePe: Tensor = noGrad(() => pe.getDensePe());
    await expectGolden(densePe, 'vit_b.prompt.dense_pe', peTol);
    const out = dec.forward({ imageEmbeddings: emb, imagePe: densePe, sparsePromptEmbeddings: sparse, densePromptEmbeddings: dense, multimaskOutput: true });
    // decoder chain: per layer four attentions (projection, scores, keys twice, out_proj), MLP, four
    // LNs; the final attention, upscaling, hypernetwork MLP, the mask product
    const attn = (keys: number) => 2 * P + 2 * keys + P;
    const layer = attn(7) + 2 * attn(g * g) + P + c.decoderMlpDim + 4 * P;
    const decTol = reductionTol(c.decoderDepth * layer + attn(g * g) + P + 4 * P + P / 4 + 3 * P + P / 8 + 16 * 4 + 16);
    await expectGolden(out.masks, 'vit_b.decoder.masks', decTol);
    await expectGolden(out.iouPred, 'vit_b.decoder.iou', decTol);
    // backward of sum(masks * cotangent) to the image embedding and decoder parameters
    out.masks.mul(fixtureTensor('input.vit_b.decoder_cotangent', out.masks.shape, 0, 1)).sum().backward();
    const gTol = reductionTol(2 * (c.decoderDepth * layer + attn(g * g) + P + 4 * P + P / 4 + 3 * P + P / 8));
    await expectGolden(emb.grad!, 'vit_b.decoder.grad.embedding', gTol);
    const params = new Map(dec.namedParameters());
    for (const k of DECODER_GRAD_KEYS) await expectGolden(params.get(k)!.grad!, `vit_b.decoder.grad.${k}`, gTol);
  });
});

const DECODER_GRAD_KEYS = [
  'transformer.layers.0.cross_attn_token_to_image.q_proj.bias',
  'transformer.layers.1.norm4.weight',
  'output_upscaling.0.bias',
  'output_upscaling.3.bias',
  'output_hypernetworks_mlps.2.layers.2.bias',
];
