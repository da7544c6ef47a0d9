// SAM's prompt encoder (segment-anything modeling/prompt_encoder.py): sparse embeddings of points
// (with labels) and boxes from a random-Fourier positional encoding plus learned per-kind
// embeddings, and the dense embedding (a mask downscaled by convolutions, or the learned no-mask
// embedding broadcast over the embedding grid). Coordinates are in the input-image frame
// (inputImageSize, 1024 in SAM). Spec: docs/models/medsam.md section 3.
import type { Tensor } from '../../tensor.js';
import { noGrad } from '../../autograd.js';
import { randn, shapeStr, tensor } from '../../tensor.js';
import { cos, eq, sin } from '../../ops/elementwise.js';
import { matmul } from '../../ops/matmul.js';
import { cat, expand, permute, reshape, unsqueeze } from '../../ops/shape.js';
import { Module } from '../../nn/module.js';
import { ModuleList, Sequential } from '../../nn/container.js';
import { Conv2d } from '../../nn/conv.js';
import { LayerNorm2d } from '../../nn/norm.js';
import { GELU } from '../../nn/activation.js';
import { Embedding } from './common.js';

/** Positional encoding with random spatial frequencies: a stored Gaussian matrix G [2, numPosFeats]. */
export class PositionEmbeddingRandom extends Module {
  readonly positional_encoding_gaussian_matrix: Tensor;

  constructor(readonly numPosFeats = 64, scale = 1) {
    super();
    const g = randn([2, numPosFeats]);
    const scaled = scale === 1 ? g : noGrad(() => g.mul(scale));
    if (scaled !== g) g.dispose();
    this.positional_encoding_gaussian_matrix = this.buffer('positional_encoding_gaussian_matrix', scaled);
  }

  /** Points normalised to [0, 1]^2, [..., 2] (x, y) -> [..., 2 * numPosFeats]: [sin(2 pi a), cos(2 pi a)], a = (2c - 1) G. */
  private peEncoding(coords: Tensor): Tensor {
    const a = matmul(coords.mul(2).sub(1), this.positional_encoding_gaussian_matrix).mul(2 * Math.PI);
    return cat([sin(a), cos(a)], -1);
  }

  /** The encoding of every cell centre of an h x w grid: [2 * numPosFeats, h, w]. */
  forward(size: [number, number]): Tensor {
    const [h, w] = size;
    const grid = new Float32Array(h * w * 2);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        grid[(i * w + j) * 2] = (j + 0.5) / w;
        grid[(i * w + j) * 2 + 1] = (i + 0.5) / h;
      }
    }
    return permute(this.peEncoding(tensor(grid, [h, w, 2])), [2, 0, 1]);
  }

  /** Unnormalised points [B, N, 2] in an image of imageSize (h, w) -> [B, N, 2 * numPosFeats]. */
  forwardWithCoords(coords: Tensor, imageSize: [number, number]): Tensor {
    return this.peEncoding(coords.div(tensor([imageSize[1], imageSize[0]], [2])));
  }
}

export interface PromptEncoderOptions {
  embedDim: number;
  /** the image embedding's grid (64 x 64 in SAM) */
  imageEmbeddingSize: [number, number];
  /** the padded input image's size, the frame of point and box coordinates (1024 x 1024 in SAM) */
  inputImageSize: [number, number];
  maskInChans: number;
}

/** Points: coordinates [B, N, 2] (x, y) and labels [B, N] (1 foreground, 0 background, -1 padding). */
export interface PointPrompt {
  coords: Tensor;
  labels: Tensor;
}

export interface Prompts {
  points?: PointPrompt | null;
  /** [B, 4] or [B, 1, 4]: x0, y0, x1, y1 */
  boxes?: Tensor | null;
  /** [B, 1, 4 * embedding grid] low-res mask logits */
  masks?: Tensor | null;
}

export class PromptEncoder extends Module {
  readonly pe_layer: PositionEmbeddingRandom;
  readonly point_embeddings: ModuleList<Embedding>;
  readonly not_a_point_embed: Embedding;
  readonly mask_downscaling: Sequential;
  readonly no_mask_embed: Embedding;
  readonly maskInputSize: [number, number];
  /** point_embeddings: 0 background point, 1 foreground point, 2 box top-left, 3 box bottom-right */
  readonly numPointEmbeddings = 4;

  constructor(readonly options: PromptEncoderOptions) {
    super();
    const { embedDim, maskInChans, imageEmbeddingSize } = options;
    this.pe_layer = this.child('pe_layer', new PositionEmbeddingRandom(embedDim / 2));
    this.point_embeddings = this.child('point_embeddings', new ModuleList(Array.from({ length: this.numPointEmbeddings }, () => new Embedding(1, embedDim))));
    this.not_a_point_embed = this.child('not_a_point_embed', new Embedding(1, embedDim));
    this.maskInputSize = [4 * imageEmbeddingSize[0], 4 * imageEmbeddingSize[1]];
    this.mask_downscaling = this.child(
      'mask_downscaling',
      new Sequential(
        new Conv2d(1, maskInChans / 4, 2, { stride: 2 }),
        new LayerNorm2d(maskInChans / 4),
        new GELU(),
        new Conv2d(maskInChans / 4, maskInChans, 2, { stride: 2 }),
        new LayerNorm2d(maskInChans),
        new GELU(),
        new Conv2d(maskInChans, embedDim, 1),
      ),
    );
    this.no_mask_embed = this.child('no_mask_embed', new Embedding(1, embedDim));
  }

  /** The positional encoding of the image embedding's grid, [1, embedDim, h, w]. */
  getDensePe(): Tensor {
    return unsqueeze(this.pe_layer.forward(this.options.imageEmbeddingSize), 0);
  }

  /** Points -> [B, N (+1 padding point when there is no box), embedDim]. */
  private embedPoints(points: PointPrompt, pad: boolean): Tensor {
    let coords = points.coords.add(0.5); // shift to the pixel centre
    let labels = points.labels;
    if (pad) {
      const B = coords.shape[0];
      coords = cat([coords, tensor(new Float32Array(B * 2), [B, 1, 2])], 1);
      labels = cat([labels, tensor(new Float32Array(B).fill(-1), [B, 1])], 1);
    }
    const pe = this.pe_layer.forwardWithCoords(coords, this.options.inputImageSize);
    const is = (l: number) => unsqueeze(eq(labels, l), -1); // [B, N, 1]
    // label -1: the encoding is replaced by not_a_point_embed; labels 0 and 1 add their embedding
    const padding = is(-1);
    return pe
      .mul(padding.neg().add(1))
      .add(padding.mul(this.not_a_point_embed.weight))
      .add(is(0).mul(this.point_embeddings.get(0).weight))
      .add(is(1).mul(this.point_embeddings.get(1).weight));
  }

  /** Boxes [B, 4] or [B, 1, 4] -> their two corners [B, 2, embedDim]. */
  private embedBoxes(boxes: Tensor): Tensor {
    const coords = reshape(boxes.add(0.5), [-1, 2, 2]);
    const corners = this.pe_layer.forwardWithCoords(coords, this.options.inputImageSize);
    return corners.add(cat([this.point_embeddings.get(2).weight, this.point_embeddings.get(3).weight], 0));
  }

  private batchSize(p: Prompts): number {
    if (p.points) return p.points.coords.shape[0];
    if (p.boxes) return p.boxes.shape[0];
    if (p.masks) return p.masks.shape[0];
    return 1;
  }

  /**
   * Sparse embeddings [B, N, embedDim] (points, then box corners; N may be 0) and dense embeddings
   * [B, embedDim, h, w] of the embedding grid.
   */
  forward(prompts: Prompts): { sparse: Tensor; dense: Tensor } {
    const { points, boxes, masks } = prompts;
    const bs = this.batchSize(prompts);
    const dim = this.options.embedDim;
    const parts: Tensor[] = [];
    if (points) parts.push(this.embedPoints(points, !boxes));
    if (boxes) {
      if (boxes.shape[boxes.ndim - 1] !== 4) throw new Error(`PromptEncoder: boxes must be [B, 4] or [B, 1, 4], got ${shapeStr(boxes.shape)}`);
      parts.push(this.embedBoxes(boxes));
    }
    const sparse = parts.length === 0 ? tensor(new Float32Array(0), [bs, 0, dim]) : parts.length === 1 ? parts[0] : cat(parts, 1);
    let dense: Tensor;
    if (masks) {
      const [mh, mw] = this.maskInputSize;
      if (masks.ndim !== 4 || masks.shape[1] !== 1 || masks.shape[2] !== mh || masks.shape[3] !== mw) {
        throw new Error(`PromptEncoder: masks must be [B, 1, ${mh}, ${mw}], got ${shapeStr(masks.shape)}`);
      }
      dense = this.mask_downscaling.forward(masks);
    } else {
      const [h, w] = this.options.imageEmbeddingSize;
      dense = expand(reshape(this.no_mask_embed.weight, [1, dim, 1, 1]), [bs, dim, h, w]);
    }
    return { sparse, dense };
  }
}
