// SAM's mask decoder (segment-anything modeling/mask_decoder.py, with MedSAM's batching: an image
// embedding whose batch equals the prompts' is used as it is, a single one is shared by every
// prompt): output tokens (IoU token, 1 + numMultimaskOutputs mask tokens) and the sparse prompt
// embeddings run through the two-way transformer with the image embedding plus the dense prompt
// embedding; the image tokens are upscaled 4x by two transposed convs, each mask token's
// hypernetwork MLP gives the weights of its mask over the upscaled channels, and an MLP on the
// IoU token predicts each mask's quality. Spec: docs/models/medsam.md section 4.
import type { Tensor } from '../../tensor.js';
import { matmul } from '../../ops/matmul.js';
import { cat, expand, narrow, reshape, squeeze, transpose, unsqueeze } from '../../ops/shape.js';
import { Module } from '../../nn/module.js';
import { ModuleList, Sequential } from '../../nn/container.js';
import { ConvTranspose2d } from '../../nn/conv.js';
import { LayerNorm2d } from '../../nn/norm.js';
import { GELU } from '../../nn/activation.js';
import { Embedding, MLP } from './common.js';
import type { TwoWayTransformer } from './transformer.js';

export interface MaskDecoderOptions {
  transformerDim: number;
  numMultimaskOutputs: number;
  iouHeadDepth: number;
  iouHeadHiddenDim: number;
}

export interface MaskDecoderInput {
  /** [1 or B, C, h, w] */
  imageEmbeddings: Tensor;
  /** [1, C, h, w], the prompt encoder's getDensePe() */
  imagePe: Tensor;
  /** [B, N, C] */
  sparsePromptEmbeddings: Tensor;
  /** [B, C, h, w] */
  densePromptEmbeddings: Tensor;
  /** true: the numMultimaskOutputs masks (tokens 1...); false: the single-mask token 0 */
  multimaskOutput: boolean;
}

export class MaskDecoder extends Module {
  readonly transformer: TwoWayTransformer;
  readonly iou_token: Embedding;
  readonly mask_tokens: Embedding;
  readonly output_upscaling: Sequential;
  readonly output_hypernetworks_mlps: ModuleList<MLP>;
  readonly iou_prediction_head: MLP;
  readonly numMaskTokens: number;

  constructor(transformer: TwoWayTransformer, readonly options: MaskDecoderOptions) {
    super();
    const d = options.transformerDim;
    this.transformer = this.child('transformer', transformer);
    this.numMaskTokens = options.numMultimaskOutputs + 1;
    this.iou_token = this.child('iou_token', new Embedding(1, d));
    this.mask_tokens = this.child('mask_tokens', new Embedding(this.numMaskTokens, d));
    this.output_upscaling = this.child(
      'output_upscaling',
      new Sequential(new ConvTranspose2d(d, d / 4, 2, { stride: 2 }), new LayerNorm2d(d / 4), new GELU(), new ConvTranspose2d(d / 4, d / 8, 2, { stride: 2 }), new GELU()),
    );
    this.output_hypernetworks_mlps = this.child('output_hypernetworks_mlps', new ModuleList(Array.from({ length: this.numMaskTokens }, () => new MLP(d, d, d / 8, 3))));
    this.iou_prediction_head = this.child('iou_prediction_head', new MLP(d, options.iouHeadHiddenDim, this.numMaskTokens, options.iouHeadDepth));
  }

  /** Masks [B, 1 or numMultimaskOutputs, 4h, 4w] (logits) and IoU predictions [B, 1 or numMultimaskOutputs]. */
  forward(input: MaskDecoderInput): { masks: Tensor; iouPred: Tensor } {
    const { masks, iouPred } = this.predictMasks(input);
    const [start, len] = input.multimaskOutput ? [1, this.numMaskTokens - 1] : [0, 1];
    return { masks: narrow(masks, 1, start, len), iouPred: narrow(iouPred, 1, start, len) };
  }

  /** Every mask token's mask and IoU prediction. */
  predictMasks(input: MaskDecoderInput): { masks: Tensor; iouPred: Tensor } {
    const { imageEmbeddings, imagePe, sparsePromptEmbeddings: sparse, densePromptEmbeddings: dense } = input;
    const B = sparse.shape[0];
    const d = this.options.transformerDim;
    // tokens: [iou token; mask tokens; sparse prompts]
    const outputTokens = expand(unsqueeze(cat([this.iou_token.weight, this.mask_tokens.weight], 0), 0), [B, 1 + this.numMaskTokens, d]);
    const tokens = sparse.shape[1] === 0 ? outputTokens : cat([outputTokens, sparse], 1);
    const [ib, c, h, w] = imageEmbeddings.shape;
    if (ib !== B && ib !== 1) throw new Error(`MaskDecoder: ${ib} image embeddings for ${B} prompts (expected 1 or ${B})`);
    const src = (ib === B ? imageEmbeddings : expand(imageEmbeddings, [B, c, h, w])).add(dense);
    const posSrc = expand(imagePe, [B, c, h, w]);
    const { queries: hs, keys } = this.transformer.forward(src, posSrc, tokens);
    const iouTokenOut = squeeze(narrow(hs, 1, 0, 1), 1);
    // the image tokens back to a grid, upscaled to [B, d / 8, 4h, 4w]
    const upscaled = this.output_upscaling.forward(reshape(transpose(keys, 1, 2), [B, c, h, w]));
    const hyperIn = cat(
      [...this.output_hypernetworks_mlps].map((mlp, i) => unsqueeze(mlp.forward(squeeze(narrow(hs, 1, 1 + i, 1), 1)), 1)),
      1,
    ); // [B, numMaskTokens, d / 8]
    const [, uc, uh, uw] = upscaled.shape;
    const masks = reshape(matmul(hyperIn, reshape(upscaled, [B, uc, uh * uw])), [B, this.numMaskTokens, uh, uw]);
    const iouPred = this.iou_prediction_head.forward(iouTokenOut);
    return { masks, iouPred };
  }
}

