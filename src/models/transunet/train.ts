// TransUNet fine-tuning as TransUNet's trainer.py and datasets/dataset_synapse.py train
// (docs/models/transunet.md section 5):
//   loss = 0.5 CrossEntropy(logits, label) + 0.5 DiceLoss(softmax(logits), label), where DiceLoss
//     (utils.py) is 1 - (2 sum(p g) + 1e-5) / (sum(p^2) + sum(g^2) + 1e-5) per class over the batch
//     and pixels together, averaged over all classes (background and classes absent from the batch
//     included);
//   SGD momentum 0.9, weight decay 1e-4, lr = base_lr (1 - iter / max_iter)^0.9 set after each
//     step (trainer.py sets it from the iteration just taken, so the first two steps both use base_lr);
//   RandomGenerator: with probability 0.5 np.rot90 by k in {0..3} then np.flip along axis 0 or 1;
//     otherwise with probability 0.5 ndimage.rotate by an integer angle in [-20, 19] degrees
//     (order 0, reshape=False, zeros outside) for the image and the label alike; then the image
//     zoomed to imgSize with order 3 and the label with order 0.
// Planes are row-major h x w (axis 0 = rows, as NumPy's first axis).
import { noGrad } from '../../autograd.js';
import { scope } from '../../scope.js';
import type { Tensor } from '../../tensor.js';
import { softmax } from '../../ops/softmax.js';
import { crossEntropy, diceLoss } from '../../ops/loss.js';
import { SGD } from '../../optim/sgd.js';
import { PolyLR } from '../../optim/lr-scheduler.js';
import { zoomCubic, zoomNearest } from './inference.js';
import type { TransUNet } from './transunet.js';

/** trainer.py's loss terms of logits [N, C, H, W] against class indices [N, H, W] (integer-valued f32). */
export function transunetLosses(logits: Tensor, labels: Tensor): { loss: Tensor; ce: Tensor; dice: Tensor } {
  return scope(() => {
    const ce = crossEntropy(logits, labels);
    const dice = diceLoss(softmax(logits, 1), labels, { smooth: 1e-5, squaredPred: true, batch: true, reduction: 'mean' });
    return { loss: ce.mul(0.5).add(dice.mul(0.5)), ce, dice };
  });
}

/** 0.5 cross entropy + 0.5 Dice (trainer.py). */
export function transunetLoss(logits: Tensor, labels: Tensor): Tensor {
  return scope(() => transunetLosses(logits, labels).loss);
}

/** A plane with its size: row-major h x w values. */
export interface Plane<T extends Float32Array | Uint8Array> {
  data: T;
  h: number;
  w: number;
}

function like<T extends Float32Array | Uint8Array>(a: T, n: number): T {
  return (a instanceof Uint8Array ? new Uint8Array(n) : new Float32Array(n)) as T;
}

/** np.rot90(plane, k): k quarter turns counterclockwise (h and w swap for odd k). */
export function rot90<T extends Float32Array | Uint8Array>(p: Plane<T>, k: number): Plane<T> {
  const q = ((k % 4) + 4) % 4;
  const { data, h, w } = p;
  const [oh, ow] = q % 2 ? [w, h] : [h, w];
  const out = like(data, h * w);
  for (let i = 0; i < oh; i++)
    for (let j = 0; j < ow; j++) {
      // the source pixel of output (i, j)
      const [y, x] = q === 0 ? [i, j] : q === 1 ? [j, w - 1 - i] : q === 2 ? [h - 1 - i, w - 1 - j] : [h - 1 - j, i];
      out[i * ow + j] = data[y * w + x];
    }
  return { data: out, h: oh, w: ow };
}

/** np.flip(plane, axis): axis 0 reverses the rows' order, axis 1 each row. */
export function flip<T extends Float32Array | Uint8Array>(p: Plane<T>, axis: 0 | 1): Plane<T> {
  const { data, h, w } = p;
  const out = like(data, h * w);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) out[y * w + x] = axis === 0 ? data[(h - 1 - y) * w + x] : data[y * w + (w - 1 - x)];
  return { data: out, h, w };
}

/** scipy.special.cosdg / sindg: exact at multiples of 90 degrees. */
function cosSinDeg(deg: number): [number, number] {
  if (Number.isInteger(deg) && deg % 90 === 0) {
    const q = (((deg / 90) % 4) + 4) % 4;
    return [[1, 0, -1, 0][q], [0, 1, 0, -1][q]];
  }
  const r = (deg * Math.PI) / 180;
  return [Math.cos(r), Math.sin(r)];
}

/**
 * scipy.ndimage.rotate(plane, angle, order=0, reshape=False) (mode 'constant', cval 0): output
 * pixel o reads input R o + offset with R = [[cos, sin], [-sin, cos]] about the centre
 * ((h - 1) / 2, (w - 1) / 2), rounded to the nearest pixel (halves up); points outside
 * [0, h - 1] x [0, w - 1] give 0.
 */
export function rotateNearest<T extends Float32Array | Uint8Array>(p: Plane<T>, angle: number): Plane<T> {
  const { data, h, w } = p;
  const [c, s] = cosSinDeg(angle);
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const oy = cy - (c * cy + s * cx);
  const ox = cx - (-s * cy + c * cx);
  const out = like(data, h * w);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++) {
      const y = c * i + s * j + oy;
      const x = -s * i + c * j + ox;
      if (y < 0 || y > h - 1 || x < 0 || x > w - 1) continue;
      out[i * w + j] = data[Math.min(h - 1, Math.floor(y + 0.5)) * w + Math.min(w - 1, Math.floor(x + 0.5))];
    }
  return { data: out, h, w };
}

/** One training sample: the windowed image (values in [0, 1]) and its class labels. */
export interface TrainingSlice {
  image: Plane<Float32Array>;
  label: Plane<Uint8Array>;
}

/** What RandomGenerator chose for a sample. */
export type Augmentation = { kind: 'none' } | { kind: 'rot90-flip'; k: number; axis: 0 | 1 } | { kind: 'rotate'; angle: number };

/** RandomGenerator's draw (random.random() > 0.5, np.random.randint(0, 4), randint(0, 2), randint(-20, 20)). */
export function drawAugmentation(random: () => number): Augmentation {
  if (random() > 0.5) return { kind: 'rot90-flip', k: Math.floor(random() * 4), axis: random() < 0.5 ? 0 : 1 };
  if (random() > 0.5) return { kind: 'rotate', angle: Math.floor(random() * 40) - 20 };
  return { kind: 'none' };
}

/** Applies an augmentation to the image and the label together. */
export function applyAugmentation(s: TrainingSlice, a: Augmentation): TrainingSlice {
  if (a.kind === 'rot90-flip') return { image: flip(rot90(s.image, a.k), a.axis), label: flip(rot90(s.label, a.k), a.axis) };
  if (a.kind === 'rotate') return { image: rotateNearest(s.image, a.angle), label: rotateNearest(s.label, a.angle) };
  return s;
}

/** RandomGenerator(output_size=(size, size)): the random augmentation, then the zoom to size x size (image order 3, label order 0). */
export function randomGenerator(s: TrainingSlice, size: number, random: () => number): TrainingSlice & { augmentation: Augmentation } {
  if (s.image.h !== s.label.h || s.image.w !== s.label.w) throw new Error(`TransUNet training: label ${s.label.h}x${s.label.w} differs from the image's ${s.image.h}x${s.image.w}`);
  const augmentation = drawAugmentation(random);
  const { image, label } = applyAugmentation(s, augmentation);
  if (image.h === size && image.w === size) return { image, label, augmentation };
  return {
    image: { data: Float32Array.from(zoomCubic(image.data, image.h, image.w, size, size)), h: size, w: size },
    label: { data: zoomNearest(label.data, label.h, label.w, size, size), h: size, w: size },
    augmentation,
  };
}

export interface TransUNetTrainerOptions {
  /** base learning rate (default 0.01, train.py) */
  baseLr?: number;
  /** max_iterations of the poly schedule (trainer.py: epochs x batches per epoch) */
  maxSteps: number;
  momentum?: number;
  weightDecay?: number;
}

export interface TransUNetStep {
  loss: number;
  ce: number;
  dice: number;
  /** the learning rate this step used */
  lr: number;
  /** argmax of the training-mode logits equal to the label, over the batch's pixels */
  accuracy: number;
}

/** SGD with momentum on trainer.py's loss and poly learning rate. */
export class TransUNetTrainer {
  readonly optimizer: SGD;
  readonly scheduler: PolyLR;
  steps = 0;

  constructor(
    readonly model: TransUNet,
    options: TransUNetTrainerOptions,
  ) {
    if (!(Number.isInteger(options.maxSteps) && options.maxSteps > 0)) throw new Error(`TransUNetTrainer: maxSteps must be a positive integer, got ${options.maxSteps}`);
    this.optimizer = new SGD(model.parameters(), { lr: options.baseLr ?? 0.01, momentum: options.momentum ?? 0.9, weightDecay: options.weightDecay ?? 1e-4 });
    this.scheduler = new PolyLR(this.optimizer, { maxSteps: options.maxSteps, power: 0.9 });
  }

  /** One step on images [B, 1 or 3, S, S] and labels [B, S, S] (class indices as f32). */
  async step(images: Tensor, labels: Tensor): Promise<TransUNetStep> {
    const m = this.model;
    m.train();
    const lr = this.optimizer.paramGroups[0].lr;
    const { loss, ce, dice, pred } = scope(() => {
      const logits = m.forward(images);
      const l = transunetLosses(logits, labels);
      this.optimizer.zeroGrad();
      l.loss.backward();
      this.optimizer.step();
      return { ...l, pred: noGrad(() => logits.argmax(1)) };
    });
    // trainer.py sets lr = base (1 - iter / max)^0.9 after step `iter` (0-based) for the next one: the
    // schedule lags PolyLR's by one step, so the scheduler advances from the second step on
    if (this.steps > 0) this.scheduler.step();
    this.steps++;
    const [lv, cv, dv, pv, gv] = await Promise.all([loss.read(), ce.read(), dice.read(), pred.read(), labels.read()]);
    for (const t of [loss, ce, dice, pred]) t.dispose();
    let hit = 0;
    for (let i = 0; i < pv.length; i++) if (pv[i] === gv[i]) hit++;
    return { loss: lv[0], ce: cv[0], dice: dv[0], lr, accuracy: hit / pv.length };
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
