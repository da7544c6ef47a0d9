// Convolution modules with torch.nn's names, parameters and default initialisation:
// Conv1d/2d/3d (weight [out, in/groups, k...]), ConvTranspose2d/3d (weight [in, out/groups, k...]),
// and TransUNet's StdConv2d (a Conv2d whose weight is standardised at every forward). Weights and
// biases are U(-1/sqrt(fanIn), 1/sqrt(fanIn)) (kaiming_uniform with a = sqrt(5), and the matching
// bias bound), fanIn = weight.shape[1] * kernel volume, drawn from the seeded generator.
import type { Tensor } from '../tensor.js';
import { conv, convTranspose, type ConvOptions, type ConvPadding, type ConvTransposeOptions, type IntOrTuple } from '../ops/conv.js';
import { weightStandardize } from '../ops/norm.js';
import { Module } from './module.js';
import { uniformInit } from './linear.js';


function kernelTuple(k: IntOrTuple, nd: number, what: string): number[] {
  const t = typeof k === 'number' ? new Array<number>(nd).fill(k) : [...k];
  if (t.length !== nd || t.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`${what}: kernelSize must be an int or ${nd} positive ints, got ${JSON.stringify(k)}`);
  return t;
}

export interface ConvModuleOptions {
  stride?: IntOrTuple;
  padding?: ConvPadding;
  dilation?: IntOrTuple;
  groups?: number;
  bias?: boolean;
}

class ConvNd extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly options: ConvOptions;

  constructor(nd: number, inChannels: number, outChannels: number, kernelSize: IntOrTuple, options: ConvModuleOptions = {}) {
    super();
    const name = `Conv${nd}d`;
    const groups = options.groups ?? 1;
    if (inChannels % groups || outChannels % groups) throw new Error(`${name}: groups=${groups} must divide in (${inChannels}) and out (${outChannels}) channels`);
    const k = kernelTuple(kernelSize, nd, name);
    const fanIn = (inChannels / groups) * k.reduce((a, b) => a * b, 1);
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = this.param('weight', uniformInit([outChannels, inChannels / groups, ...k], bound));
    this.bias = options.bias === false ? this.param('bias', null) : this.param('bias', uniformInit([outChannels], bound));
    this.options = { stride: options.stride, padding: options.padding, dilation: options.dilation, groups };
  }

  forward(x: Tensor): Tensor {
    return conv(x, this.weight, this.bias, this.options);
  }
}

export class Conv1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: IntOrTuple, options: ConvModuleOptions = {}) {
    super(1, inChannels, outChannels, kernelSize, options);
  }
}

export class Conv2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: IntOrTuple, options: ConvModuleOptions = {}) {
    super(2, inChannels, outChannels, kernelSize, options);
  }
}

export class Conv3d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: IntOrTuple, options: ConvModuleOptions = {}) {
    super(3, inChannels, outChannels, kernelSize, options);
  }
}

/** TransUNet's StdConv2d: conv2d with the weight standardised per output channel (eps 1e-5). */
export class StdConv2d extends Conv2d {
  eps = 1e-5;
  override forward(x: Tensor): Tensor {
    return conv(x, weightStandardize(this.weight, this.eps), this.bias, this.options);
  }
}

export interface ConvTransposeModuleOptions {
  stride?: IntOrTuple;
  padding?: IntOrTuple;
  outputPadding?: IntOrTuple;
  dilation?: IntOrTuple;
  groups?: number;
  bias?: boolean;
}

class ConvTransposeNd extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly options: ConvTransposeOptions;

  constructor(nd: number, inChannels: number, outChannels: number, kernelSize: IntOrTuple, options: ConvTransposeModuleOptions = {}) {
    super();
    const name = `ConvTranspose${nd}d`;
    const groups = options.groups ?? 1;
    if (inChannels % groups || outChannels % groups) throw new Error(`${name}: groups=${groups} must divide in (${inChannels}) and out (${outChannels}) channels`);
    const k = kernelTuple(kernelSize, nd, name);
    // PyTorch's fan-in for a transposed weight [in, out/groups, k...] is its dim 1 times the kernel volume.
    const fanIn = (outChannels / groups) * k.reduce((a, b) => a * b, 1);
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = this.param('weight', uniformInit([inChannels, outChannels / groups, ...k], bound));
    this.bias = options.bias === false ? this.param('bias', null) : this.param('bias', uniformInit([outChannels], bound));
    this.options = { stride: options.stride, padding: options.padding, outputPadding: options.outputPadding, dilation: options.dilation, groups };
  }

  forward(x: Tensor): Tensor {
    return convTranspose(x, this.weight, this.bias, this.options);
  }
}

export class ConvTranspose2d extends ConvTransposeNd {
  constructor(inChannels: number, outChannels: number, kernelSize: IntOrTuple, options: ConvTransposeModuleOptions = {}) {
    super(2, inChannels, outChannels, kernelSize, options);
  }
}

export class ConvTranspose3d extends ConvTransposeNd {
  constructor(inChannels: number, outChannels: number, kernelSize: IntOrTuple, options: ConvTransposeModuleOptions = {}) {
    super(3, inChannels, outChannels, kernelSize, options);
  }
}
