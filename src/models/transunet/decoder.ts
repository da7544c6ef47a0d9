// TransUNet's cascaded upsampler (networks/vit_seg_modeling.py: Conv2dReLU, DecoderBlock,
// DecoderCup, SegmentationHead): tokens back to a [B, hidden, grid, grid] map, conv_more, then
// four blocks of bilinear x2 upsampling (align_corners=True, UpsamplingBilinear2d), concatenation
// with a skip (upsampled first, skip second; only blocks k < nSkip get one, the others none at all)
// and two 3x3 conv + BatchNorm + ReLU; the head is a 3x3 conv with bias.
// Spec: docs/models/transunet.md section 2.3. Module names equal the PyTorch ones.
import type { Tensor } from '../../tensor.js';
import { shapeStr } from '../../tensor.js';
import { cat } from '../../ops/shape.js';
import { interpolate } from '../../ops/interpolate.js';
import { Module } from '../../nn/module.js';
import { ModuleList, Sequential } from '../../nn/container.js';
import { Conv2d } from '../../nn/conv.js';
import { BatchNorm2d } from '../../nn/norm.js';
import { ReLU } from '../../nn/activation.js';

/** Conv2dReLU: Sequential(Conv2d 3x3 pad 1 without bias, BatchNorm2d, ReLU), keys .0.weight, .1.*. */
export class Conv2dReLU extends Sequential {
  constructor(cin: number, cout: number) {
    super(new Conv2d(cin, cout, 3, { padding: 1, bias: false }), new BatchNorm2d(cout), new ReLU());
  }
}

/** UpsamplingBilinear2d(scale_factor=2): bilinear with align_corners=True. */
export function upsample2x(x: Tensor): Tensor {
  return interpolate(x, { scaleFactor: 2, mode: 'bilinear', alignCorners: true });
}

/** up x2 -> [cat skip] -> conv1 -> conv2. */
export class DecoderBlock extends Module {
  readonly conv1: Conv2dReLU;
  readonly conv2: Conv2dReLU;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly skipChannels: number,
  ) {
    super();
    this.conv1 = this.child('conv1', new Conv2dReLU(inChannels + skipChannels, outChannels));
    this.conv2 = this.child('conv2', new Conv2dReLU(outChannels, outChannels));
  }

  forward(x: Tensor, skip: Tensor | null = null): Tensor {
    let h = upsample2x(x);
    if (skip) {
      if (skip.shape[1] !== this.skipChannels || skip.shape[2] !== h.shape[2] || skip.shape[3] !== h.shape[3]) {
        throw new Error(`TransUNet DecoderBlock: skip ${shapeStr(skip.shape)} does not fit the upsampled ${shapeStr(h.shape)} with ${this.skipChannels} skip channels`);
      }
      h = cat([h, skip], 1);
    } else if (this.skipChannels) {
      throw new Error(`TransUNet DecoderBlock: built for a ${this.skipChannels}-channel skip, given none`);
    }
    return this.conv2.forward(this.conv1.forward(h));
  }
}

export interface DecoderOptions {
  hidden: number;
  /** conv_more's output (512 in TransUNet) */
  headChannels: number;
  decoderChannels: readonly number[];
  /** skip widths per block, before zeroing those at k >= nSkip */
  skipChannels: readonly number[];
  nSkip: number;
}

export class DecoderCup extends Module {
  readonly conv_more: Conv2dReLU;
  readonly blocks: ModuleList<DecoderBlock>;
  readonly nSkip: number;

  constructor(o: DecoderOptions) {
    super();
    this.nSkip = o.nSkip;
    this.conv_more = this.child('conv_more', new Conv2dReLU(o.hidden, o.headChannels));
    const ins = [o.headChannels, ...o.decoderChannels.slice(0, -1)];
    // TransUNet zeroes skip_channels[k] for k >= n_skip
    const skips = o.decoderChannels.map((_, k) => (k < o.nSkip ? o.skipChannels[k] : 0));
    this.blocks = this.child('blocks', new ModuleList(o.decoderChannels.map((out, k) => new DecoderBlock(ins[k], out, skips[k]))));
  }

  /** tokens [B, grid^2, hidden] and the skips (deepest first) -> [B, decoderChannels[-1], 16 grid, 16 grid]. */
  forward(tokens: Tensor, features: readonly Tensor[]): Tensor {
    const [B, T, D] = tokens.shape;
    const g = Math.round(Math.sqrt(T));
    if (g * g !== T) throw new Error(`TransUNet DecoderCup: ${T} tokens are not a square grid`);
    let x = this.conv_more.forward(tokens.permute(0, 2, 1).reshape(B, D, g, g));
    for (let k = 0; k < this.blocks.length; k++) x = this.blocks.get(k).forward(x, k < this.nSkip ? features[k] : null);
    return x;
  }
}

/** SegmentationHead: Sequential(Conv2d 3x3 pad 1 with bias) (its upsampling is the identity at factor 1). */
export class SegmentationHead extends Sequential {
  constructor(cin: number, numClasses: number) {
    super(new Conv2d(cin, numClasses, 3, { padding: 1 }));
  }
}
