// nn.Linear: y = x W^T + b with W [out, in], b [out] (PyTorch's layout and state_dict keys
// "weight", "bias"). Initialised as PyTorch does: kaiming_uniform(a=sqrt(5)) for W, which is
// U(-1/sqrt(in), 1/sqrt(in)), and the same bound for b; seeded (options.seed, else manualSeed's stream).
import { noGrad } from '../autograd.js';
import { linear } from '../ops/matmul.js';
import { Tensor, rand } from '../tensor.js';
import { Unary, elementwise } from '../ops/elementwise-kernel.js';
import { scope } from '../scope.js';
import { Module } from './module.js';

export interface LinearOptions {
  bias?: boolean;
  seed?: number;
}

/** U(-bound, bound) of `shape`, seeded. */
export function uniformInit(shape: readonly number[], bound: number, seed?: number): Tensor {
  return scope(() => noGrad(() => elementwise(Unary.affine, [rand(shape, { seed })], { alpha: 2 * bound, beta: -bound }, 'init')));
}

export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Tensor;
  bias: Tensor | null;

  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    if (!Number.isInteger(inFeatures) || !Number.isInteger(outFeatures) || inFeatures <= 0 || outFeatures <= 0) {
      throw new Error(`nn.Linear: feature counts must be positive integers, got (${inFeatures}, ${outFeatures})`);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    // kaiming_uniform(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)
    const bound = 1 / Math.sqrt(inFeatures);
    const seed = options.seed;
    this.weight = this.param('weight', uniformInit([outFeatures, inFeatures], bound, seed));
    this.bias = (options.bias ?? true) ? this.param('bias', uniformInit([outFeatures], bound, seed === undefined ? undefined : seed + 1)) : null;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
