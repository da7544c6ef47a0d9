// Activation modules with parameters: PReLU (weight [numParameters], initialised to 0.25 as torch.nn.PReLU).
import { Tensor, full } from '../tensor.js';
import { prelu } from '../ops/elementwise.js';
import { Module } from './module.js';

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
