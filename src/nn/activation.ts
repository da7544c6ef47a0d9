// Activation modules (no parameters): nn.ReLU, nn.GELU (exact erf form, PyTorch's default).
import { gelu, relu } from '../ops/elementwise.js';
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class GELU extends Module {
  constructor(options: { approximate?: 'none' } = {}) {
    super();
    if ((options.approximate ?? 'none') !== 'none') throw new Error(`nn.GELU: only approximate='none' (the erf form) is implemented`);
  }
  forward(x: Tensor): Tensor {
    return gelu(x);
  }
}
