// Activation modules with torch.nn's names: ReLU, GELU (exact erf form, PyTorch's default), ELU,
// and PReLU (weight [numParameters], initialised to 0.25 as torch.nn.PReLU).
import { Tensor, full } from '../tensor.js';
import { elu, gelu, prelu, relu } from '../ops/elementwise.js';
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

export class ELU extends Module {
  constructor(readonly alpha = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return elu(x, this.alpha);
  }
}

export class PReLU extends Module {
  readonly weight: Tensor;

  constructor(
    readonly numParameters = 1,
    init = 0.25,
  ) {
    super();
    this.weight = this.param('weight', full([numParameters], init));
  }

  forward(x: Tensor): Tensor {
    return prelu(x, this.weight);
  }
}
