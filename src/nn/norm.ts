// Normalisation modules with torch.nn's names, parameters and buffers: BatchNorm2d/3d (weight 1,
// bias 0, running_mean 0, running_var 1, num_batches_tracked), GroupNorm, LayerNorm, and SAM's
// LayerNorm2d (weight 1, bias 0, eps 1e-6).
import { noGrad } from '../autograd.js';
import { Tensor, ones, zeros, shapeStr } from '../tensor.js';
import { batchNorm, groupNorm, layerNorm, layerNorm2d } from '../ops/norm.js';
import { Module, copyInto } from './module.js';

export interface BatchNormOptions {
  eps?: number;
  /** null: cumulative moving average (1 / num_batches_tracked), as PyTorch */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

class BatchNormNd extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;
  readonly momentum: number | null;
  readonly trackRunningStats: boolean;
  /** num_batches_tracked as counted by this module's forwards (for momentum null). */
  private batches = 0;

  constructor(
    private readonly nd: number,
    readonly numFeatures: number,
    options: BatchNormOptions = {},
  ) {
    super();
    const affine = options.affine ?? true;
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum === undefined ? 0.1 : options.momentum;
    this.trackRunningStats = options.trackRunningStats ?? true;
    this.weight = this.param('weight', affine ? ones([numFeatures]) : null);
    this.bias = this.param('bias', affine ? zeros([numFeatures]) : null);
    if (this.trackRunningStats) {
      this.buffer('running_mean', zeros([numFeatures]));
      this.buffer('running_var', ones([numFeatures]));
      this.buffer('num_batches_tracked', zeros([]));
    }
  }

  get runningMean(): Tensor | null {
    return this.getBuffer('running_mean');
  }
  get runningVar(): Tensor | null {
    return this.getBuffer('running_var');
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== this.nd + 2) throw new Error(`BatchNorm${this.nd}d: expected a ${this.nd + 2}-d input, got ${shapeStr(x.shape)}`);
    let momentum = this.momentum ?? 0;
    if (this.training && this.trackRunningStats) {
      this.batches++;
      // Updated in place, so tensors taken from stateDict() stay current.
      const nbt = this.getBuffer('num_batches_tracked')!;
      copyInto(nbt, noGrad(() => nbt.add(1)));
      if (this.momentum === null) momentum = 1 / this.batches;
    }
    const useBatch = this.training || !this.trackRunningStats;
    return batchNorm(x, this.trackRunningStats ? this.runningMean : null, this.trackRunningStats ? this.runningVar : null, this.weight, this.bias, useBatch, momentum, this.eps);
  }
}

export class BatchNorm2d extends BatchNormNd {
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super(2, numFeatures, options);
  }
}

export class BatchNorm3d extends BatchNormNd {
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super(3, numFeatures, options);
  }
}

export class GroupNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    options: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    if (numChannels % numGroups) throw new Error(`GroupNorm: ${numGroups} groups must divide ${numChannels} channels`);
    this.eps = options.eps ?? 1e-5;
    const affine = options.affine ?? true;
    this.weight = this.param('weight', affine ? ones([numChannels]) : null);
    this.bias = this.param('bias', affine ? zeros([numChannels]) : null);
  }

  forward(x: Tensor): Tensor {
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}

export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(normalizedShape: number | readonly number[], options: { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.eps = options.eps ?? 1e-5;
    const affine = options.elementwiseAffine ?? true;
    this.weight = this.param('weight', affine ? ones(this.normalizedShape) : null);
    this.bias = this.param('bias', affine && (options.bias ?? true) ? zeros(this.normalizedShape) : null);
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

/** SAM's LayerNorm2d: layer norm over the channels of [N, C, H, W]. */
export class LayerNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(
    readonly numChannels: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = this.param('weight', ones([numChannels]));
    this.bias = this.param('bias', zeros([numChannels]));
  }

  forward(x: Tensor): Tensor {
    return layerNorm2d(x, this.weight, this.bias, this.eps);
  }
}
