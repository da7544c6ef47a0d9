// MedSAM against PyTorch: the tiny configuration (every code path of vit_b) with the weights and
// inputs of test/fixtures/medsam_reference.py's formula, compared with that script's float64
// PyTorch goldens: the image embedding, the dense positional encoding, sparse embeddings of a box,
// of points (labels 1, 0, -1, padded when there is no box) and of both, the dense embedding of mask
// inputs, the decoder's low-res masks and IoU (single-mask and multimask, a batch of two boxes
// sharing one image embedding, a mask prompt alone), and one backward pass (encoder and decoder parameter gradients).
// Also: vit_b's parameter names and shapes equal the checkpoint's key manifest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { models, noGrad, tensor, type Tensor } from '../../src/index.js';
import { manifests } from '../../src/weights/schemas/manifests.gen.js';
import { ready } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { chainLengths, expectGolden, fillModule, fixtureTensor } from './medsam-helpers.js';

beforeAll(ready);

describe('MedSAM vit_b', () => {
  it('has exactly the parameter names and shapes of medsam_vit_b.pth (314 keys, in state_dict order)', () => {
    const net = new models.MedSAM({ config: 'vit_b' });
    const got = [...net.stateDict()].map(([k, t]) => [k, [...t.shape]]);
    expect(got).toEqual(manifests.medsam_vit_b.tensors);
    for (const [, t] of net.stateDict()) t.dispose();
  });
});

describe('MedSAM tiny against PyTorch (float64)', () => {
  let net: models.MedSAM;
  const c = models.MEDSAM_CONFIGS.tiny;
  const S = c.imageSize;
  const grid = S / c.patchSize;
  const { encoderK, decoderK } = chainLengths(c);
  const peTol = reductionTol(2 + 30); // a 2-term product, then sin/cos of arguments up to ~30
  const encTol = reductionTol(encoderK);
  const decTol = reductionTol(encoderK + decoderK);

  beforeAll(() => {
    net = new models.MedSAM({ config: 'tiny' });
    fillModule(net);
    net.eval();
  });
  afterAll(() => {
    for (const [, t] of net.stateDict()) t.dispose();
  });

  const image = () => fixtureTensor('input.image', [1, 3, S, S], 0.5, 0.5);
  const box = () => tensor([[10.0, 14.5, 41.0, 52.25]]);
  const points = () => ({ coords: tensor([[[20.0, 30.0], [50.5, 8.0], [0.0, 0.0]]]), labels: tensor([[1, 0, -1]]) });

  it('image encoder: the image embedding', async () => {
    const emb = noGrad(() => net.image_encoder.forward(image()));
    await expectGolden(emb, 'tiny.image_embedding', encTol);
  });

  it('prompt encoder: the dense positional encoding and the sparse embeddings of a box, points, and both', async () => {
    const pe = net.prompt_encoder;
    await expectGolden(noGrad(() => pe.getDensePe()), 'tiny.dense_pe', peTol);
    await expectGolden(noGrad(() => pe.forward({ boxes: box() }).sparse), 'tiny.box.sparse', peTol);
    await expectGolden(noGrad(() => pe.forward({ points: points() }).sparse), 'tiny.points.sparse', peTol);
    await expectGolden(noGrad(() => pe.forward({ points: points(), boxes: box() }).sparse), 'tiny.points_box.sparse', peTol);
  });

  it('prompt encoder: mask inputs through mask_downscaling, a batch of two boxes', async () => {
    const boxes = tensor([[10.0, 14.5, 41.0, 52.25], [3.0, 0.0, 63.0, 30.0]]);
    const masks = fixtureTensor('input.mask', [2, 1, 4 * grid, 4 * grid], 0, 4);
    const { sparse, dense } = noGrad(() => net.prompt_encoder.forward({ boxes, masks }));
    await expectGolden(sparse, 'tiny.boxes2.sparse', peTol);
    await expectGolden(dense, 'tiny.mask.dense', reductionTol(4 + 4 * 4 + 16 + c.maskInChans + c.maskInChans));
  });

  it('mask decoder: low-res masks and IoU for a box, points (multimask), two boxes with masks and a mask alone', async () => {
    const emb = noGrad(() => net.embedImage(image()));
    const run = (prompts: models.Prompts, multimask: boolean) => noGrad(() => net.decode(emb, prompts, multimask));
    let out = run({ boxes: box() }, false);
    await expectGolden(out.lowResLogits, 'tiny.box.masks', decTol);
    await expectGolden(out.iouPredictions, 'tiny.box.iou', decTol);
    out = run({ points: points() }, true);
    await expectGolden(out.lowResLogits, 'tiny.points.masks', decTol);
    await expectGolden(out.iouPredictions, 'tiny.points.iou', decTol);
    const boxes = tensor([[10.0, 14.5, 41.0, 52.25], [3.0, 0.0, 63.0, 30.0]]);
    const masks = fixtureTensor('input.mask', [2, 1, 4 * grid, 4 * grid], 0, 4);
    out = run({ boxes, masks }, false);
    await expectGolden(out.lowResLogits, 'tiny.boxes2_mask.masks', decTol);
    await expectGolden(out.iouPredictions, 'tiny.boxes2_mask.iou', decTol);
    // a mask prompt alone: no sparse tokens, only the IoU and mask tokens
    out = run({ masks: masks.narrow(0, 0, 1) }, false);
    await expectGolden(out.lowResLogits, 'tiny.mask_only.masks', decTol);
    await expectGolden(out.iouPredictions, 'tiny.mask_only.iou', decTol);
  });

  it('backward: parameter gradients of sum(masks * cotangent) through encoder and decoder', async () => {
    net.zeroGrad();
    const { lowResLogits: m } = net.forward(image(), { boxes: box() });
    const cot = fixtureTensor('input.cotangent', m.shape, 0, 1);
    m.mul(cot).sum().backward();
    const params = new Map(net.namedParameters());
    // a gradient runs the forward chain and back again
    const gTol = reductionTol(2 * (encoderK + decoderK));
    for (const k of GRAD_KEYS) {
      const g = params.get(k)?.grad as Tensor | null;
      expect(g, `${k} has a gradient`).toBeTruthy();
      await expectGolden(g!, `tiny.grad.${k}`, gTol);
    }
    net.zeroGrad();
  });
});

const GRAD_KEYS = [
  'image_encoder.patch_embed.proj.bias',
  'image_encoder.pos_embed',
  'image_encoder.blocks.0.attn.qkv.bias',
  'image_encoder.blocks.0.attn.rel_pos_h',
  'image_encoder.blocks.0.attn.rel_pos_w',
  'image_encoder.blocks.1.attn.qkv.weight',
  'image_encoder.blocks.1.attn.rel_pos_h',
  'image_encoder.blocks.1.norm2.weight',
  'image_encoder.neck.0.weight',
  'image_encoder.neck.3.bias',
  'mask_decoder.transformer.layers.0.self_attn.q_proj.weight',
  'mask_decoder.transformer.layers.1.cross_attn_image_to_token.v_proj.weight',
  'mask_decoder.output_upscaling.0.weight',
  'mask_decoder.output_hypernetworks_mlps.0.layers.2.weight',
  'mask_decoder.mask_tokens.weight',
];
