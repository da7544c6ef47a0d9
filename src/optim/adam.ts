// optim.Adam and optim.AdamW with PyTorch's update (bias correction, optional AMSGrad, maximize):
// see shaders/optim.wgsl. Adam adds weightDecay * p to the gradient (L2); AdamW decays the
// parameter itself by (1 - lr * weightDecay) before the step. State: "exp_avg", "exp_avg_sq",
// "max_exp_avg_sq" (AMSGrad), and the step count.
import type { Tensor } from '../tensor.js';
import { Optimizer, type ParamGroup, type ParamState, type ParamsArg } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

export class Adam extends Optimizer<AdamOptions> {
  protected readonly name: string = 'Adam';
  protected readonly decoupled: boolean = false;

  constructor(params: ParamsArg<AdamOptions>, options: Partial<AdamOptions> = {}, defaultWeightDecay = 0) {
    const o: AdamOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: defaultWeightDecay, amsgrad: false, maximize: false, ...options };
    if (!(o.lr >= 0)) throw new Error(`Adam: invalid learning rate ${o.lr}`);
    if (!(o.eps >= 0)) throw new Error(`Adam: invalid eps ${o.eps}`);
    if (!(o.betas[0] >= 0 && o.betas[0] < 1 && o.betas[1] >= 0 && o.betas[1] < 1)) throw new Error(`Adam: invalid betas [${o.betas}]`);
    if (!(o.weightDecay >= 0)) throw new Error(`Adam: invalid weightDecay ${o.weightDecay}`);
    super(params, o);
  }

  protected update(p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, st: ParamState): void {
    const [beta1, beta2] = g.betas;
    const bc1 = 1 - beta1 ** st.step;
    const bc2 = 1 - beta2 ** st.step;
    const buffers: Record<string, GPUBuffer> = {
      exp_avg: this.stateTensor(p, st, 'exp_avg').storage.buffer,
      exp_avg_sq: this.stateTensor(p, st, 'exp_avg_sq').storage.buffer,
    };
    if (g.amsgrad) buffers.max_exp_avg_sq = this.stateTensor(p, st, 'max_exp_avg_sq').storage.buffer;
    this.dispatch(g.amsgrad ? 'adam_amsgrad' : 'adam', { MAXIMIZE: g.maximize, DECOUPLED: this.decoupled }, p, grad, buffers, {
      lr: g.lr,
      weight_decay: g.weightDecay,
      beta1,
      beta2,
      eps: g.eps,
      step_size: g.lr / bc1,
      bc2_sqrt: Math.sqrt(bc2),
    });
  }
}

export class AdamW extends Adam {
  protected override readonly name = 'AdamW';
  protected override readonly decoupled = true;

  /** weightDecay defaults to 1e-2, as torch.optim.AdamW. */
  constructor(params: ParamsArg<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super(params, options, 1e-2);
  }
}
