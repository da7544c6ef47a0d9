// SAM's image encoder (segment-anything modeling/image_encoder.py, ImageEncoderViT; ViTDet-style):
// a 16x16 stride-16 patch embedding to channels-last tokens [B, H/16, W/16, C], a learned absolute
// position table, `depth` pre-norm transformer blocks (windowed attention with zero-padded windows,
// global attention in globalAttnIndexes, both with decomposed relative position) and the neck
// (1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d; no biases) to [B, outChans, H/16, W/16].
// Spec: docs/models/medsam.md section 2. Module names equal SAM's, so the checkpoint's
// image_encoder.* keys load as they are.
import type { Tensor } from '../../tensor.js';
import { zeros, shapeStr } from '../../tensor.js';
import { permute, reshape, narrow } from '../../ops/shape.js';
import { relPosAttention } from '../../ops/rel-pos.js';
import { scaledDotProductAttention } from '../../ops/attention.js';
import { windowPartition, windowUnpartition } from '../../ops/window.js';
import { Module } from '../../nn/module.js';
import { ModuleList, Sequential } from '../../nn/container.js';
import { Conv2d } from '../../nn/conv.js';
import { Linear } from '../../nn/linear.js';
import { LayerNorm, LayerNorm2d } from '../../nn/norm.js';
import { MLPBlock } from './common.js';

export interface ImageEncoderOptions {
  imgSize: number;
  patchSize: number;
  inChans: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  outChans: number;
  /** window edge of the windowed blocks (14 in SAM) */
  windowSize: number;
  /** blocks with global attention (2, 5, 8, 11 in SAM ViT-B) */
  globalAttnIndexes: readonly number[];
}

/** The encoder's LayerNorm: eps 1e-6 (SAM builds it with partial(nn.LayerNorm, eps=1e-6)). */
const ENCODER_LN_EPS = 1e-6;

/** Image to patch embedding: conv k = stride = patchSize, then NCHW -> NHWC. */
export class PatchEmbed extends Module {
  readonly proj: Conv2d;

  constructor(patchSize: number, inChans: number, embedDim: number) {
    super();
    this.proj = this.child('proj', new Conv2d(inChans, embedDim, patchSize, { stride: patchSize }));
  }

  forward(x: Tensor): Tensor {
    return permute(this.proj.forward(x), [0, 2, 3, 1]);
  }
}

/**
 * Multi-head attention over a channels-last grid [B, H, W, dim] with decomposed relative position
 * (tables rel_pos_h / rel_pos_w [2 * inputSize - 1, headDim], shared by the heads).
 */
export class Attention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly rel_pos_h: Tensor | null;
  readonly rel_pos_w: Tensor | null;
  readonly headDim: number;
  readonly scale: number;

  constructor(
    readonly dim: number,
    readonly numHeads: number,
    useRelPos: boolean,
    readonly inputSize: [number, number],
  ) {
    super();
    this.headDim = dim / numHeads;
    if (!Number.isInteger(this.headDim)) throw new Error(`image encoder Attention: ${numHeads} heads do not divide width ${dim}`);
    this.scale = this.headDim ** -0.5;
    this.qkv = this.child('qkv', new Linear(dim, dim * 3));
    this.proj = this.child('proj', new Linear(dim, dim));
    // SAM zero-initialises the tables (rel_pos_zero_init=True).
    this.rel_pos_h = useRelPos ? this.param('rel_pos_h', zeros([2 * inputSize[0] - 1, this.headDim])) : null;
    this.rel_pos_w = useRelPos ? this.param('rel_pos_w', zeros([2 * inputSize[1] - 1, this.headDim])) : null;
  }

  forward(x: Tensor): Tensor {
    const [B, H, W] = x.shape;
    const nh = this.numHeads;
    // qkv features are ordered [q | k | v] x head x headDim -> [3, B, heads, H*W, headDim]
    const qkv = permute(reshape(this.qkv.forward(x), [B, H * W, 3, nh, this.headDim]), [2, 0, 3, 1, 4]);
    const [q, k, v] = [0, 1, 2].map((s) => reshape(narrow(qkv, 0, s, 1), [B, nh, H * W, this.headDim]));
    const o =
      this.rel_pos_h && this.rel_pos_w
        ? relPosAttention(q, k, v, this.rel_pos_h, this.rel_pos_w, [H, W], [H, W], { scale: this.scale })
        : scaledDotProductAttention(q, k, v, { scale: this.scale });
    // heads back to feature head * headDim + d
    return this.proj.forward(reshape(permute(o, [0, 2, 1, 3]), [B, H, W, this.dim]));
  }
}

/** A pre-norm transformer block; windowSize 0 is global attention over the whole grid. */
export class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: MLPBlock;

  constructor(dim: number, numHeads: number, mlpRatio: number, readonly windowSize: number, inputSize: [number, number]) {
    super();
    this.norm1 = this.child('norm1', new LayerNorm(dim, { eps: ENCODER_LN_EPS }));
    this.attn = this.child('attn', new Attention(dim, numHeads, true, windowSize === 0 ? inputSize : [windowSize, windowSize]));
    this.norm2 = this.child('norm2', new LayerNorm(dim, { eps: ENCODER_LN_EPS }));
    this.mlp = this.child('mlp', new MLPBlock(dim, Math.trunc(dim * mlpRatio), 'gelu'));
  }

  forward(x: Tensor): Tensor {
    const shortcut = x;
    let y = this.norm1.forward(x);
    if (this.windowSize > 0) {
      const [H, W] = [y.shape[1], y.shape[2]];
      const { windows, padHW } = windowPartition(y, this.windowSize);
      y = windowUnpartition(this.attn.forward(windows), this.windowSize, padHW, [H, W]);
    } else {
      y = this.attn.forward(y);
    }
    const h = shortcut.add(y);
    return h.add(this.mlp.forward(this.norm2.forward(h)));
  }
}

export class ImageEncoderViT extends Module {
  readonly patch_embed: PatchEmbed;
  readonly pos_embed: Tensor;
  readonly blocks: ModuleList<Block>;
  readonly neck: Sequential;

  constructor(readonly options: ImageEncoderOptions) {
    super();
    const o = options;
    const grid = o.imgSize / o.patchSize;
    if (!Number.isInteger(grid)) throw new Error(`ImageEncoderViT: patch size ${o.patchSize} must divide the image size ${o.imgSize}`);
    this.patch_embed = this.child('patch_embed', new PatchEmbed(o.patchSize, o.inChans, o.embedDim));
    this.pos_embed = this.param('pos_embed', zeros([1, grid, grid, o.embedDim]));
    const blocks: Block[] = [];
    for (let i = 0; i < o.depth; i++) {
      blocks.push(new Block(o.embedDim, o.numHeads, o.mlpRatio, o.globalAttnIndexes.includes(i) ? 0 : o.windowSize, [grid, grid]));
    }
    this.blocks = this.child('blocks', new ModuleList(blocks));
    this.neck = this.child(
      'neck',
      new Sequential(
        new Conv2d(o.embedDim, o.outChans, 1, { bias: false }),
        new LayerNorm2d(o.outChans),
        new Conv2d(o.outChans, o.outChans, 3, { padding: 1, bias: false }),
        new LayerNorm2d(o.outChans),
      ),
    );
  }

  /** x [B, inChans, imgSize, imgSize] -> image embedding [B, outChans, imgSize/patch, imgSize/patch]. */
  forward(x: Tensor): Tensor {
    const { imgSize, inChans } = this.options;
    if (x.ndim !== 4 || x.shape[1] !== inChans || x.shape[2] !== imgSize || x.shape[3] !== imgSize) {
      throw new Error(`ImageEncoderViT: input must be [B, ${inChans}, ${imgSize}, ${imgSize}], got ${shapeStr(x.shape)}`);
    }
    let h = this.patch_embed.forward(x).add(this.pos_embed);
    for (const blk of this.blocks) h = blk.forward(h);
    return this.neck.forward(permute(h, [0, 3, 1, 2]));
  }
}
