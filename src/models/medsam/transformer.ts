// SAM's two-way transformer (segment-anything modeling/transformer.py): the prompt tokens (queries)
// and the image embedding's tokens (keys) attend to each other in `depth` blocks (self-attention of
// the tokens, tokens to image, an MLP on the tokens, image to tokens), then a final tokens-to-image
// attention. The initial tokens are the queries' positional encoding in every layer; the image's
// is the dense positional encoding. Spec: docs/models/medsam.md section 4.
import type { Tensor } from '../../tensor.js';
import { scaledDotProductAttention } from '../../ops/attention.js';
import { flatten, permute, reshape, transpose } from '../../ops/shape.js';
import { Module } from '../../nn/module.js';
import { ModuleList } from '../../nn/container.js';
import { Linear } from '../../nn/linear.js';
import { LayerNorm } from '../../nn/norm.js';
import { MLPBlock } from './common.js';

/**
 * Attention with q, k and v projected to embeddingDim / downsampleRate features (split into
 * numHeads consecutive slices), softmax(q k^T / sqrt(headDim)) v, then out_proj back.
 */
export class Attention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out_proj: Linear;
  readonly internalDim: number;

  constructor(
    readonly embeddingDim: number,
    readonly numHeads: number,
    downsampleRate = 1,
  ) {
    super();
    this.internalDim = embeddingDim / downsampleRate;
    if (!Number.isInteger(this.internalDim / numHeads)) throw new Error(`two-way transformer Attention: ${numHeads} heads must divide ${embeddingDim} / ${downsampleRate}`);
    this.q_proj = this.child('q_proj', new Linear(embeddingDim, this.internalDim));
    this.k_proj = this.child('k_proj', new Linear(embeddingDim, this.internalDim));
    this.v_proj = this.child('v_proj', new Linear(embeddingDim, this.internalDim));
    this.out_proj = this.child('out_proj', new Linear(this.internalDim, embeddingDim));
  }

  /** [B, N, I] -> [B, heads, N, I / heads] */
  private separateHeads(x: Tensor): Tensor {
    const [b, n, c] = x.shape;
    return transpose(reshape(x, [b, n, this.numHeads, c / this.numHeads]), 1, 2);
  }

  /** [B, heads, N, d] -> [B, N, heads * d] */
  private recombineHeads(x: Tensor): Tensor {
    const [b, h, n, d] = x.shape;
    return reshape(transpose(x, 1, 2), [b, n, h * d]);
  }

  forward(q: Tensor, k: Tensor, v: Tensor): Tensor {
    const qh = this.separateHeads(this.q_proj.forward(q));
    const kh = this.separateHeads(this.k_proj.forward(k));
    const vh = this.separateHeads(this.v_proj.forward(v));
    return this.out_proj.forward(this.recombineHeads(scaledDotProductAttention(qh, kh, vh)));
  }
}

/**
 * One block: self-attention of the queries (without positional encoding or residual in the first
 * block), cross-attention tokens to image, MLP, cross-attention image to tokens; post-norms.
 */
export class TwoWayAttentionBlock extends Module {
  readonly self_attn: Attention;
  readonly norm1: LayerNorm;
  readonly cross_attn_token_to_image: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: MLPBlock;
  readonly norm3: LayerNorm;
  readonly norm4: LayerNorm;
  readonly cross_attn_image_to_token: Attention;

  constructor(embeddingDim: number, numHeads: number, mlpDim: number, attentionDownsampleRate: number, readonly skipFirstLayerPe: boolean) {
    super();
    this.self_attn = this.child('self_attn', new Attention(embeddingDim, numHeads));
    this.norm1 = this.child('norm1', new LayerNorm(embeddingDim));
    this.cross_attn_token_to_image = this.child('cross_attn_token_to_image', new Attention(embeddingDim, numHeads, attentionDownsampleRate));
    this.norm2 = this.child('norm2', new LayerNorm(embeddingDim));
    this.mlp = this.child('mlp', new MLPBlock(embeddingDim, mlpDim, 'relu'));
    this.norm3 = this.child('norm3', new LayerNorm(embeddingDim));
    this.norm4 = this.child('norm4', new LayerNorm(embeddingDim));
    this.cross_attn_image_to_token = this.child('cross_attn_image_to_token', new Attention(embeddingDim, numHeads, attentionDownsampleRate));
  }

  forward(queries: Tensor, keys: Tensor, queryPe: Tensor, keyPe: Tensor): { queries: Tensor; keys: Tensor } {
    // self-attention of the tokens
    if (this.skipFirstLayerPe) {
      queries = this.self_attn.forward(queries, queries, queries);
    } else {
      const q = queries.add(queryPe);
      queries = queries.add(this.self_attn.forward(q, q, queries));
    }
    queries = this.norm1.forward(queries);
    // tokens attending to the image
    let q = queries.add(queryPe);
    let k = keys.add(keyPe);
    queries = this.norm2.forward(queries.add(this.cross_attn_token_to_image.forward(q, k, keys)));
    // MLP on the tokens
    queries = this.norm3.forward(queries.add(this.mlp.forward(queries)));
    // the image attending to the tokens
    q = queries.add(queryPe);
    k = keys.add(keyPe);
    keys = this.norm4.forward(keys.add(this.cross_attn_image_to_token.forward(k, q, queries)));
    return { queries, keys };
  }
}

export class TwoWayTransformer extends Module {
  readonly layers: ModuleList<TwoWayAttentionBlock>;
  readonly final_attn_token_to_image: Attention;
  readonly norm_final_attn: LayerNorm;

  constructor(
    readonly depth: number,
    readonly embeddingDim: number,
    readonly numHeads: number,
    readonly mlpDim: number,
    attentionDownsampleRate = 2,
  ) {
    super();
    this.layers = this.child('layers', new ModuleList(Array.from({ length: depth }, (_, i) => new TwoWayAttentionBlock(embeddingDim, numHeads, mlpDim, attentionDownsampleRate, i === 0))));
    this.final_attn_token_to_image = this.child('final_attn_token_to_image', new Attention(embeddingDim, numHeads, attentionDownsampleRate));
    this.norm_final_attn = this.child('norm_final_attn', new LayerNorm(embeddingDim));
  }

  /**
   * imageEmbedding [B, C, h, w], imagePe [B, C, h, w], pointEmbedding [B, N, C] ->
   * queries [B, N, C] (the processed tokens) and keys [B, h*w, C] (the processed image).
   */
  forward(imageEmbedding: Tensor, imagePe: Tensor, pointEmbedding: Tensor): { queries: Tensor; keys: Tensor } {
    const keyPe = permute(flatten(imagePe, 2), [0, 2, 1]);
    let keys = permute(flatten(imageEmbedding, 2), [0, 2, 1]);
    let queries = pointEmbedding;
    for (const layer of this.layers) ({ queries, keys } = layer.forward(queries, keys, pointEmbedding, keyPe));
    const attnOut = this.final_attn_token_to_image.forward(queries.add(pointEmbedding), keys.add(keyPe), keys);
    queries = this.norm_final_attn.forward(queries.add(attnOut));
    return { queries, keys };
  }
}
