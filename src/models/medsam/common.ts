// What segment-anything's modeling/common.py holds and the blocks its files share: MLPBlock (lin1,
// activation, lin2: the encoder's GELU MLP and the two-way transformer's ReLU MLP), mask_decoder.py's
// MLP (a ModuleList `layers` of Linears with ReLU between them) and nn.Embedding (a `weight`
// [num, dim] table, of which SAM only ever reads whole rows). LayerNorm2d lives in src/nn/norm.ts.
import type { Tensor } from '../../tensor.js';
import { randn } from '../../tensor.js';
import { gelu, relu, sigmoid } from '../../ops/elementwise.js';
import { Module } from '../../nn/module.js';
import { ModuleList } from '../../nn/container.js';
import { Linear } from '../../nn/linear.js';

export type Activation = 'gelu' | 'relu';

const activations: Record<Activation, (x: Tensor) => Tensor> = { gelu, relu };

/** common.py's MLPBlock: lin2(act(lin1(x))). */
export class MLPBlock extends Module {
  readonly lin1: Linear;
  readonly lin2: Linear;
  private readonly act: (x: Tensor) => Tensor;

  constructor(embeddingDim: number, mlpDim: number, act: Activation) {
    super();
    this.lin1 = this.child('lin1', new Linear(embeddingDim, mlpDim));
    this.lin2 = this.child('lin2', new Linear(mlpDim, embeddingDim));
    this.act = activations[act];
  }

  forward(x: Tensor): Tensor {
    return this.lin2.forward(this.act(this.lin1.forward(x)));
  }
}

/** mask_decoder.py's MLP: numLayers Linears (input -> hidden ... -> output), ReLU after all but the last. */
export class MLP extends Module {
  readonly layers: ModuleList<Linear>;

  constructor(
    inputDim: number,
    hiddenDim: number,
    outputDim: number,
    readonly numLayers: number,
    readonly sigmoidOutput = false,
  ) {
    super();
    const h = new Array<number>(numLayers - 1).fill(hiddenDim);
    const ins = [inputDim, ...h];
    const outs = [...h, outputDim];
    this.layers = this.child('layers', new ModuleList(ins.map((n, i) => new Linear(n, outs[i]))));
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (let i = 0; i < this.numLayers; i++) {
      y = this.layers.get(i).forward(y);
      if (i < this.numLayers - 1) y = relu(y);
    }
    return this.sigmoidOutput ? sigmoid(y) : y;
  }
}

/** torch.nn.Embedding's parameter: `weight` [num, dim], N(0, 1) as PyTorch initialises it. */
export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
  ) {
    super();
    this.weight = this.param('weight', randn([numEmbeddings, embeddingDim]));
  }
}
