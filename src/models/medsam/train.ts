// MedSAM fine-tuning as train_one_gpu.py trains (docs/models/medsam.md section 8): the low-res
// logits upsampled bilinearly (align_corners=False) to the input size, loss = MONAI
// DiceLoss(sigmoid=True, squared_pred=True, mean) + BCEWithLogits(mean) against the binary mask,
// AdamW (lr 1e-4, weight decay 0.01) over the image encoder and mask decoder, the prompt encoder
// frozen and run without gradients; boxes are the mask's bounding box enlarged by a random 0..shift
// pixels per side. With freezeEncoder the image embedding is computed once per image (cached by the
// caller through embed()) and each step runs only the decoder.
import { noGrad } from '../../autograd.js';
import { scope } from '../../scope.js';
import type { Tensor } from '../../tensor.js';
import { gt, sigmoid } from '../../ops/elementwise.js';
import { interpolate } from '../../ops/interpolate.js';
import { binaryCrossEntropyWithLogits, diceLoss } from '../../ops/loss.js';
import { AdamW } from '../../optim/adam.js';
import type { MedSAM } from './medsam.js';

/** MedSAM's loss of low-res logits [B, 1, g, g] against masks [B, 1, S, S] (0/1). */
export function medsamLoss(lowResLogits: Tensor, masks: Tensor): Tensor {
  return scope(() => {
    const [, , h, w] = masks.shape;
    const logits = interpolate(lowResLogits, { size: [h, w], mode: 'bilinear', alignCorners: false });
    const dice = diceLoss(sigmoid(logits), masks, { squaredPred: true, smoothNr: 1e-5, smoothDr: 1e-5, reduction: 'mean' });
    return dice.add(binaryCrossEntropyWithLogits(logits, masks));
  });
}

/**
 * The mask's bounding box [x0, y0, x1, y1] (pixels of a row-major H x W mask), each side moved out
 * by a random 0..shift pixels and clipped to the image, as MedSAM's NpyDataset does (bbox_shift 20
 * at 1024). Null for an empty mask.
 */
export function jitteredBox(mask: ArrayLike<number>, width: number, height: number, shift: number, random: () => number = Math.random): [number, number, number, number] | null {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x] > 0) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  }
  if (x0 === Infinity) return null;
  const r = () => Math.floor(random() * (shift + 1)); // random.randint(0, shift)
  return [Math.max(0, x0 - r()), Math.max(0, y0 - r()), Math.min(width, x1 + r()), Math.min(height, y1 + r())];
}

export interface MedSAMTrainerOptions {
  lr?: number;
  weightDecay?: number;
  /** train only the mask decoder (the embedding then comes from embed(), computed once) */
  freezeEncoder?: boolean;
}

export interface MedSAMStep {
  loss: number;
  /** hard Dice of (sigmoid(logits) > 0.5) at the input size against the masks, over the batch */
  dice: number;
}

export class MedSAMTrainer {
  readonly optimizer: AdamW;
  readonly freezeEncoder: boolean;

  constructor(
    readonly model: MedSAM,
    options: MedSAMTrainerOptions = {},
  ) {
    this.freezeEncoder = options.freezeEncoder ?? false;
    for (const p of model.prompt_encoder.parameters()) p.requiresGrad = false;
    for (const p of model.image_encoder.parameters()) p.requiresGrad = !this.freezeEncoder;
    const params = [...(this.freezeEncoder ? [] : model.image_encoder.parameters()), ...model.mask_decoder.parameters()];
    this.optimizer = new AdamW(params, { lr: options.lr ?? 1e-4, weightDecay: options.weightDecay ?? 0.01 });
  }

  /** The image embedding of images [B, 3, S, S] without gradients (to cache when the encoder is frozen). */
  embed(images: Tensor): Tensor {
    return noGrad(() => this.model.embedImage(images));
  }

  /**
   * One AdamW step on images [B, 3, S, S] (or, with freezeEncoder, their cached embedding), boxes
   * [B, 4] in the S x S frame, masks [B, 1, S, S].
   */
  async step(input: { images?: Tensor; embedding?: Tensor; boxes: Tensor; masks: Tensor }): Promise<MedSAMStep> {
    const m = this.model;
    m.train();
    this.optimizer.zeroGrad();
    const { loss, pred } = scope(() => {
      const emb = input.embedding ?? (this.freezeEncoder ? this.embed(input.images!) : m.embedImage(input.images!));
      const { sparse, dense } = noGrad(() => m.prompt_encoder.forward({ boxes: input.boxes }));
      const { masks: low } = m.mask_decoder.forward({ imageEmbeddings: emb, imagePe: noGrad(() => m.prompt_encoder.getDensePe()), sparsePromptEmbeddings: sparse, densePromptEmbeddings: dense, multimaskOutput: false });
      const l = medsamLoss(low, input.masks);
      l.backward();
      const [, , h, w] = input.masks.shape;
      const p = noGrad(() => gt(interpolate(low, { size: [h, w], mode: 'bilinear', alignCorners: false }), 0));
      return { loss: l, pred: p };
    });
    this.optimizer.step();
    const [lv, pv, gv] = await Promise.all([loss.read(), pred.read(), input.masks.read()]);
    loss.dispose();
    pred.dispose();
    let inter = 0;
    let sum = 0;
    for (let i = 0; i < pv.length; i++) {
      inter += pv[i] * gv[i];
      sum += pv[i] + gv[i];
    }
    return { loss: lv[0], dice: sum > 0 ? (2 * inter) / sum : 1 };
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

