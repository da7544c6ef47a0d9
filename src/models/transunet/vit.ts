// TransUNet's transformer (networks/vit_seg_modeling.py): Embeddings (the ResNetV2 hybrid, a
// patch-embedding conv on its 1/16 map, flattened row-major to tokens, + a learned position table,
// dropout), Encoder (pre-norm Blocks: LN eps 1e-6, multi-head attention with separate
// query/key/value/out Linears, the GELU MLP fc1 -> fc2 with dropout after each), encoder_norm.
// No class token. Spec: docs/models/transunet.md section 2.2. Module names equal the PyTorch ones.
import type { Tensor } from '../../tensor.js';
import { randn, zeros } from '../../tensor.js';
import { noGrad } from '../../autograd.js';
import { scope } from '../../scope.js';
import { gelu } from '../../ops/elementwise.js';
import { scaledDotProductAttention } from '../../ops/attention.js';
import { Module, copyInto } from '../../nn/module.js';
import { ModuleList } from '../../nn/container.js';
import { Conv2d } from '../../nn/conv.js';
import { Dropout } from '../../nn/dropout.js';
import { Linear, uniformInit } from '../../nn/linear.js';
import { LayerNorm } from '../../nn/norm.js';
import { ResNetV2 } from './resnet-v2.js';

const LN_EPS = 1e-6;

export interface TransformerOptions {
  hidden: number;
  numLayers: number;
  numHeads: number;
  mlpDim: number;
  dropoutRate: number;
  imgSize: number;
  /** ResNetV2 units per stage and width factor (width 64 * factor) */
  blockUnits: readonly [number, number, number];
  widthFactor: number;
  /** GroupNorm groups of the ResNet (32 in TransUNet) */
  gnGroups: number;
}

/** Multi-head self-attention: softmax(Q_h K_h^T / sqrt(dh)) V_h per head, heads concatenated, then out. */
export class Attention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly out: Linear;
  readonly headDim: number;

  constructor(
    readonly hidden: number,
    readonly numHeads: number,
  ) {
    super();
    this.headDim = hidden / numHeads;
    if (!Number.isInteger(this.headDim)) throw new Error(`TransUNet Attention: ${numHeads} heads do not divide hidden ${hidden}`);
    this.query = this.child('query', new Linear(hidden, hidden));
    this.key = this.child('key', new Linear(hidden, hidden));
    this.value = this.child('value', new Linear(hidden, hidden));
    this.out = this.child('out', new Linear(hidden, hidden));
  }

  forward(x: Tensor): Tensor {
    const [B, T] = x.shape;
    // [B, T, hidden] -> [B, heads, T, dh]; head h holds features h * dh ... h * dh + dh - 1
    const heads = (t: Tensor) => t.reshape(B, T, this.numHeads, this.headDim).permute(0, 2, 1, 3);
    const ctx = scaledDotProductAttention(heads(this.query.forward(x)), heads(this.key.forward(x)), heads(this.value.forward(x)), { scale: 1 / Math.sqrt(this.headDim) });
    return this.out.forward(ctx.permute(0, 2, 1, 3).reshape(B, T, this.hidden));
  }
}

/** fc2(drop(gelu(fc1(x)))), dropped again; Xavier-uniform weights and N(0, 1e-6) biases as TransUNet's Mlp. */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly dropout: Dropout;

  constructor(hidden: number, mlpDim: number, dropoutRate: number) {
    super();
    this.fc1 = this.child('fc1', new Linear(hidden, mlpDim));
    this.fc2 = this.child('fc2', new Linear(mlpDim, hidden));
    this.dropout = this.child('dropout', new Dropout(dropoutRate));
    for (const fc of [this.fc1, this.fc2]) {
      const bound = Math.sqrt(6 / (fc.inFeatures + fc.outFeatures));
      scope(() =>
        noGrad(() => {
          copyInto(fc.weight, uniformInit(fc.weight.shape, bound));
          copyInto(fc.bias!, randn(fc.bias!.shape).mul(1e-6));
        }),
      );
    }
  }

  forward(x: Tensor): Tensor {
    return this.dropout.forward(this.fc2.forward(this.dropout.forward(gelu(this.fc1.forward(x)))));
  }
}

/** Pre-norm block: x + attn(LN(x)), then h + ffn(LN(h)). */
export class Block extends Module {
  readonly attention_norm: LayerNorm;
  readonly ffn_norm: LayerNorm;
  readonly ffn: Mlp;
  readonly attn: Attention;

  constructor(hidden: number, numHeads: number, mlpDim: number, dropoutRate: number) {
    super();
    this.attention_norm = this.child('attention_norm', new LayerNorm(hidden, { eps: LN_EPS }));
    this.ffn_norm = this.child('ffn_norm', new LayerNorm(hidden, { eps: LN_EPS }));
    this.ffn = this.child('ffn', new Mlp(hidden, mlpDim, dropoutRate));
    this.attn = this.child('attn', new Attention(hidden, numHeads));
  }

  forward(x: Tensor): Tensor {
    const h = x.add(this.attn.forward(this.attention_norm.forward(x)));
    return h.add(this.ffn.forward(this.ffn_norm.forward(h)));
  }
}

export class Encoder extends Module {
  readonly layer: ModuleList<Block>;
  readonly encoder_norm: LayerNorm;

  constructor(o: TransformerOptions) {
    super();
    this.layer = this.child('layer', new ModuleList(Array.from({ length: o.numLayers }, () => new Block(o.hidden, o.numHeads, o.mlpDim, o.dropoutRate))));
    this.encoder_norm = this.child('encoder_norm', new LayerNorm(o.hidden, { eps: LN_EPS }));
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (const blk of this.layer) h = blk.forward(h);
    return this.encoder_norm.forward(h);
  }
}

export interface EmbeddingsOutput {
  /** tokens [B, grid^2, hidden], row-major over the grid */
  tokens: Tensor;
  /** the hybrid's skips, deepest first */
  features: Tensor[];
}

/**
 * Hybrid embeddings: ResNetV2 to the 1/16 map, a patch conv of size img/16/grid (1 with TransUNet's
 * grid = img/16), flatten to tokens, + position_embeddings, dropout.
 */
export class Embeddings extends Module {
  readonly position_embeddings: Tensor;
  readonly hybrid_model: ResNetV2;
  readonly patch_embeddings: Conv2d;
  readonly dropout: Dropout;
  readonly grid: number;

  constructor(o: TransformerOptions) {
    super();
    if (!Number.isInteger(o.imgSize / 16) || o.imgSize < 16) throw new Error(`TransUNet: imgSize must be a positive multiple of 16, got ${o.imgSize}`);
    this.grid = o.imgSize / 16;
    this.position_embeddings = this.param('position_embeddings', zeros([1, this.grid * this.grid, o.hidden]));
    this.hybrid_model = this.child('hybrid_model', new ResNetV2(o.blockUnits, o.widthFactor, o.gnGroups));
    this.patch_embeddings = this.child('patch_embeddings', new Conv2d(this.hybrid_model.width * 16, o.hidden, 1));
    this.dropout = this.child('dropout', new Dropout(o.dropoutRate));
  }

  forward(x: Tensor): EmbeddingsOutput {
    const { x: map, features } = this.hybrid_model.forward(x);
    const tokens = this.patch_embeddings.forward(map).flatten(2).transpose(1, 2);
    return { tokens: this.dropout.forward(tokens.add(this.position_embeddings)), features };
  }
}

export interface TransformerOutput {
  /** encoded tokens [B, grid^2, hidden] */
  encoded: Tensor;
  features: Tensor[];
}

export class Transformer extends Module {
  readonly embeddings: Embeddings;
  readonly encoder: Encoder;

  constructor(o: TransformerOptions) {
    super();
    this.embeddings = this.child('embeddings', new Embeddings(o));
    this.encoder = this.child('encoder', new Encoder(o));
  }

  forward(x: Tensor): TransformerOutput {
    const { tokens, features } = this.embeddings.forward(x);
    return { encoded: this.encoder.forward(tokens), features };
  }
}
