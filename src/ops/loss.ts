// Segmentation losses, composed from the elementwise, reduction and softmax kernels (each already
// has its backward rule, so the gradients come from the tape); the stable BCE has its own rule.
//   diceLoss: 1 - (2 sum(p g) + smoothNr) / (sum(p^2) + sum(g^2) + smoothDr) per (sample, class)
//     (V-Net; squaredPred=false gives MONAI's sum(p) + sum(g); batch=true sums over the batch too,
//     as TransUNet's DiceLoss with smooth=1e-5), then weighted and reduced.
//   crossEntropy: -w[t] log_softmax(x)[t] over class dim 1, the mean normalised by sum(w[t]) of
//     the targets that are not ignoreIndex (PyTorch's weighted mean).
//   binaryCrossEntropyWithLogits: (1 - t) x + (1 + (pw - 1) t) softplus(-x), softplus computed as
//     max(-x, 0) + log(1 + exp(-|x|)); dx = (1 - t) - (1 + (pw - 1) t) sigmoid(-x).
//   oneHot: labels [...] (integer-valued f32) -> [..., C] of 0/1 (F.one_hot's layout, as f32).
import { noGrad, record } from '../autograd.js';
import { scope } from '../scope.js';
import { Tensor, shapeStr, tensor } from '../tensor.js';
import { abs, add, div, eq, exp, log, mul, neg, relu, sigmoid, sub } from './elementwise.js';
import { mean, sum } from './reduce.js';
import { logSoftmax } from './softmax.js';
import { narrow, reshape, unsqueeze } from './shape.js';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(loss: Tensor, reduction: Reduction, op: string): Tensor {
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return sum(loss);
  if (reduction === 'mean') return mean(loss);
  throw new Error(`${op}: unknown reduction '${reduction}' (use 'mean', 'sum' or 'none')`);
}

/** [C] class values laid out along dim 1 of an `ndim`-d tensor: [1, C, 1, ...]. */
function classAxis(values: ArrayLike<number>, ndim: number): Tensor {
  const shape = new Array<number>(ndim).fill(1);
  shape[1] = values.length;
  return tensor(values, shape);
}

/** F.one_hot(labels, numClasses) as f32: a new last dim of size numClasses. Not differentiable. */
export function oneHot(labels: Tensor, numClasses: number): Tensor {
  if (!Number.isInteger(numClasses) || numClasses <= 0) throw new Error(`oneHot: numClasses must be a positive integer, got ${numClasses}`);
  return scope(() => noGrad(() => eq(unsqueeze(labels, -1), tensor(Float32Array.from({ length: numClasses }, (_, i) => i), [numClasses]))));
}

/** One-hot along dim 1: labels [N, ...] -> [N, C, ...]; labels equal to `skip` get an all-zero row. */
function oneHotDim1(labels: Tensor, numClasses: number, skip?: number): Tensor {
  const vals = Float32Array.from({ length: numClasses }, (_, i) => (i === skip ? -0.5 : i));
  return scope(() => noGrad(() => eq(unsqueeze(labels, 1), classAxis(vals, labels.ndim + 1)))); // -0.5 equals no integer label
}

export interface DiceLossOptions {
  /** added to numerator and denominator unless smoothNr / smoothDr are given (default 0: V-Net's form) */
  smooth?: number;
  smoothNr?: number;
  smoothDr?: number;
  /** squares p and g in the denominator (V-Net, TransUNet; default true); false: MONAI's default sum(p) + sum(g) */
  squaredPred?: boolean;
  /** sum over the batch before the ratio (MONAI's batch=true, TransUNet) instead of one ratio per sample */
  batch?: boolean;
  /** false drops class 0 (MONAI's include_background) */
  includeBackground?: boolean;
  /** per-class weights multiplying each class's loss before the reduction */
  weight?: readonly number[] | Tensor;
  /** over [N, C] (or [C] with batch): 'mean' (default), 'sum', 'none' */
  reduction?: Reduction;
}

/**
 * Soft Dice loss of probabilities `probs` [N, C, ...] against `target`: the same shape (one-hot or
 * soft), or class indices [N, ...] / [N, 1, ...] (one-hot encoded here).
 */
export function diceLoss(probs: Tensor, target: Tensor, options: DiceLossOptions = {}): Tensor {
  if (probs.ndim < 2) throw new Error(`diceLoss: probs must be [N, C, ...], got ${shapeStr(probs.shape)}`);
  const C = probs.shape[1];
  return scope(() => {
    let g: Tensor;
    if (target.shape.join() === probs.shape.join()) g = target;
    else if (target.ndim === probs.ndim - 1 && target.shape.join() === [probs.shape[0], ...probs.shape.slice(2)].join()) {
      g = oneHotDim1(target, C);
    } else if (target.ndim === probs.ndim && target.shape[1] === 1 && target.shape.join() === [probs.shape[0], 1, ...probs.shape.slice(2)].join()) {
      g = oneHotDim1(reshape(target, [probs.shape[0], ...probs.shape.slice(2)]), C);
    } else {
      throw new Error(`diceLoss: target ${shapeStr(target.shape)} must be one-hot like probs ${shapeStr(probs.shape)} or class indices [N, ...spatial]`);
    }
    let p = probs;
    if (options.includeBackground === false) {
      if (C < 2) throw new Error(`diceLoss: includeBackground=false needs at least 2 classes, probs ${shapeStr(probs.shape)}`);
      p = narrow(probs, 1, 1, C - 1);
      g = narrow(g, 1, 1, C - 1);
    }
    const smoothNr = options.smoothNr ?? options.smooth ?? 0;
    const smoothDr = options.smoothDr ?? options.smooth ?? 0;
    const squared = options.squaredPred ?? true;
    const dims = [...(options.batch ? [0] : []), ...p.shape.slice(2).map((_, i) => i + 2)];
    const inter = sum(mul(p, g), dims);
    const pSum = sum(squared ? mul(p, p) : p, dims);
    const gSum = sum(squared ? mul(g, g) : g, dims);
    let f = add(neg(div(add(mul(inter, 2), smoothNr), add(add(pSum, gSum), smoothDr))), 1);
    if (options.weight !== undefined) {
      const nc = f.shape[f.ndim - 1];
      const w = options.weight instanceof Tensor ? options.weight : tensor(options.weight, [options.weight.length]);
      if (w.size !== nc) throw new Error(`diceLoss: weight has ${w.size} values for ${nc} classes`);
      f = mul(f, reshape(w, [nc]));
    }
    return reduce(f, options.reduction ?? 'mean', 'diceLoss');
  });
}

export interface CrossEntropyOptions {
  /** per-class weights [C] */
  weight?: Tensor | null;
  /** target value that contributes nothing (default -100, as PyTorch) */
  ignoreIndex?: number;
  reduction?: Reduction;
}

/**
 * Cross entropy of logits [N, C, ...] against class indices [N, ...] (integer-valued f32), or
 * class probabilities of the logits' shape, over class dim 1.
 */
export function crossEntropy(logits: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  if (logits.ndim < 2) throw new Error(`crossEntropy: logits must be [N, C, ...], got ${shapeStr(logits.shape)}`);
  const C = logits.shape[1];
  const reduction = options.reduction ?? 'mean';
  const weight = options.weight ?? null;
  if (weight && (weight.ndim !== 1 || weight.shape[0] !== C)) throw new Error(`crossEntropy: weight ${shapeStr(weight.shape)} must be [${C}]`);
  return scope(() => {
    const ls = logSoftmax(logits, 1);
    const w = weight ? reshape(weight, [1, C, ...new Array<number>(logits.ndim - 2).fill(1)]) : null;
    if (target.shape.join() === logits.shape.join()) {
      // probabilities: -sum_c w_c t_c log p_c, the mean over N and the spatial positions
      return reduce(neg(sum(mul(ls, w ? mul(target, w) : target), 1)), reduction, 'crossEntropy');
    }
    const want = [logits.shape[0], ...logits.shape.slice(2)];
    if (target.shape.join() !== want.join()) {
      throw new Error(`crossEntropy: target ${shapeStr(target.shape)} must be class indices ${shapeStr(want)} or probabilities ${shapeStr(logits.shape)} for logits ${shapeStr(logits.shape)}`);
    }
    // Targets outside [0, C) other than ignoreIndex contribute nothing (PyTorch raises; checking would need a read).
    const mask = oneHotDim1(target, C, options.ignoreIndex ?? -100);
    const wm = w ? mul(mask, w) : mask;
    const picked = mul(ls, wm);
    if (reduction === 'none') return neg(sum(picked, 1));
    if (reduction === 'sum') return neg(sum(picked));
    if (reduction === 'mean') return div(neg(sum(picked)), sum(wm));
    throw new Error(`crossEntropy: unknown reduction '${reduction}' (use 'mean', 'sum' or 'none')`);
  });
}

export interface BceWithLogitsOptions {
  /** weight of the positive term, broadcast against the target (e.g. one per class, last dim) */
  posWeight?: Tensor | null;
  /** rescales each element's loss (broadcast) */
  weight?: Tensor | null;
  reduction?: Reduction;
}

/** Binary cross entropy on logits, in the overflow-free form (PyTorch's). */
export function binaryCrossEntropyWithLogits(logits: Tensor, target: Tensor, options: BceWithLogitsOptions = {}): Tensor {
  if (logits.shape.join() !== target.shape.join()) {
    throw new Error(`binaryCrossEntropyWithLogits: target ${shapeStr(target.shape)} must have the logits' shape ${shapeStr(logits.shape)}`);
  }
  const pw = options.posWeight ?? null;
  const x = logits;
  const t = target;
  return scope(() => {
    // Everything below is recomputable; only the final elementwise loss is recorded.
    const { loss, sp, lw } = noGrad(() => {
      const softplus = add(relu(neg(x)), log(add(exp(neg(abs(x))), 1)));
      const logw = pw ? add(mul(t, sub(pw, 1)), 1) : null;
      return { loss: add(mul(add(neg(t), 1), x), logw ? mul(logw, softplus) : softplus), sp: softplus, lw: logw };
    });
    const rec = record('binaryCrossEntropyWithLogits', loss, [x, t], (g) => {
      // dx = (1 - t) - lw * sigmoid(-x); dt = -x + (pw - 1) softplus(-x)
      const s = x.requiresGrad ? sigmoid(neg(x)) : null;
      return [
        s ? mul(g, sub(add(neg(t), 1), lw ? mul(lw, s) : s)) : null,
        t.requiresGrad ? mul(g, pw ? sub(mul(sub(pw, 1), sp), x) : neg(x)) : null,
      ];
    }, [sp, lw]);
    return reduce(options.weight ? mul(rec, options.weight) : rec, options.reduction ?? 'mean', 'binaryCrossEntropyWithLogits');
  });
}
