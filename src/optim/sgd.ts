// optim.SGD with PyTorch's options and update (momentum, dampening, weight decay, Nesterov,
// maximize): see shaders/optim.wgsl. The momentum buffer ("momentum_buffer") starts as the first
// step's gradient, as in PyTorch.
import type { Tensor } from '../tensor.js';
import { Optimizer, type ParamGroup, type ParamState, type ParamsArg } from './optimizer.js';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  protected readonly name = 'SGD';

  constructor(params: ParamsArg<SGDOptions>, options: Partial<SGDOptions> = {}) {
    const o: SGDOptions = { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, ...options };
    if (!(o.lr >= 0)) throw new Error(`SGD: invalid learning rate ${o.lr}`);
    if (!(o.momentum >= 0)) throw new Error(`SGD: invalid momentum ${o.momentum}`);
    if (!(o.weightDecay >= 0)) throw new Error(`SGD: invalid weightDecay ${o.weightDecay}`);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) throw new Error('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
    super(params, o);
  }

  protected update(p: Tensor, grad: Tensor, g: ParamGroup<SGDOptions>, st: ParamState): void {
    const scalars = { lr: g.lr, weight_decay: g.weightDecay, momentum: g.momentum, dampening: g.dampening };
    if (g.momentum === 0) {
      this.dispatch('sgd', { MAXIMIZE: g.maximize }, p, grad, {}, scalars);
      return;
    }
    const first = !st.tensors.has('momentum_buffer');
    const buf = this.stateTensor(p, st, 'momentum_buffer');
    this.dispatch('sgd_momentum', { MAXIMIZE: g.maximize, NESTEROV: g.nesterov }, p, grad, { momentum_buffer: buf.storage.buffer }, { ...scalars, first_step: first ? 1 : 0 });
  }
}
