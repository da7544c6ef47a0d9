// The optimiser base: parameter groups with per-group hyperparameters (as torch.optim), lazily
// created per-parameter state tensors, zeroGrad, stateDict/loadStateDict for resuming, and
// dispose() for the state. Subclasses encode one in-place update kernel per parameter
// (shaders/optim.wgsl) straight onto the parameter's storage: parameters must be contiguous leaves.
import { runtime } from '../gpu/runtime.js';
import { Tensor, shapeStr, zeros } from '../tensor.js';
import { contiguous } from '../ops/shape.js';
import { copyInto } from '../nn/module.js';
import { keep } from '../scope.js';

export interface GroupOptions {
  lr: number;
}

/** One parameter group: its tensors and its hyperparameters (mutable: schedules set `lr`). */
export type ParamGroup<O extends GroupOptions> = O & { params: Tensor[]; initialLr: number };

export type ParamsArg<O extends GroupOptions> = readonly Tensor[] | readonly (Partial<O> & { params: readonly Tensor[] })[];

/** Per-parameter state: the step count and named state tensors (PyTorch's names). */
export interface ParamState {
  step: number;
  tensors: Map<string, Tensor>;
}

/** PyTorch's optimizer state_dict layout: state by parameter index, groups with parameter indices. */
export interface OptimizerStateDict {
  state: Map<number, { step: number } & Record<string, Tensor | number>>;
  paramGroups: (Record<string, unknown> & { params: number[] })[];
}

export abstract class Optimizer<O extends GroupOptions> {
  readonly paramGroups: ParamGroup<O>[];
  protected readonly state = new Map<Tensor, ParamState>();
  protected abstract readonly name: string;

  constructor(params: ParamsArg<O>, defaults: O) {
    const list = [...params];
    if (list.length === 0) throw new Error('optimizer: got an empty parameter list');
    const specs = list[0] instanceof Tensor ? [{ params: list as Tensor[] }] : (list as (Partial<O> & { params: readonly Tensor[] })[]);
    const seen = new Set<Tensor>();
    this.paramGroups = specs.map((s) => {
      const g = { ...defaults, ...s, params: [...s.params] } as ParamGroup<O>;
      g.initialLr = g.lr;
      for (const p of g.params) {
        if (seen.has(p)) throw new Error(`optimizer: parameter ${p.name ?? shapeStr(p.shape)} appears in more than one group`);
        seen.add(p);
      }
      return g;
    });
  }

  /** Every parameter, in group order (the indices of stateDict). */
  protected allParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.allParams()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Updates every parameter that has a gradient, in place. */
  step(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        if (p.gradFn || !p.isContiguous()) throw new Error(`${this.name}: parameter ${p.name ?? shapeStr(p.shape)} must be a contiguous leaf tensor`);
        if (p.grad.shape.join() !== p.shape.join()) {
          throw new Error(`${this.name}: gradient ${shapeStr(p.grad.shape)} does not match parameter ${p.name ?? ''} ${shapeStr(p.shape)}`);
        }
        let st = this.state.get(p);
        if (!st) this.state.set(p, (st = { step: 0, tensors: new Map() }));
        st.step++;
        const grad = p.grad.isContiguous() ? p.grad : contiguous(p.grad);
        this.update(p, grad, g, st);
        if (grad !== p.grad) grad.dispose();
      }
    }
  }

  /** Encodes the update of one parameter (its state's step already counts this step). */
  protected abstract update(p: Tensor, grad: Tensor, group: ParamGroup<O>, state: ParamState): void;

  /** The named state tensor of `p`, created as zeros on first use. */
  protected stateTensor(p: Tensor, state: ParamState, key: string): Tensor {
    let t = state.tensors.get(key);
    if (!t) {
      t = keep(zeros(p.shape));
      t.name = `${key} of ${p.name ?? shapeStr(p.shape)}`;
      state.tensors.set(key, t);
    }
    return t;
  }

  protected dispatch(entry: string, overrides: Record<string, number | boolean>, p: Tensor, grad: Tensor, buffers: Record<string, GPUBuffer>, params: Record<string, number>): void {
    const n = p.size;
    if (n === 0) return;
    runtime().dispatch({
      kernel: 'optim',
      entry,
      overrides: Object.fromEntries(Object.entries(overrides).map(([k, v]) => [k, Number(v)])),
      params: {
        n,
        param_offset: p.offset,
        grad_offset: grad.offset,
        first_step: 0,
        lr: 0,
        weight_decay: 0,
        momentum: 0,
        dampening: 0,
        beta1: 0,
        beta2: 0,
        eps: 0,
        step_size: 0,
        bc2_sqrt: 1,
        ...params,
      },
      buffers: { param: p.storage.buffer, grad: grad.storage.buffer, ...buffers },
      workgroups: Math.ceil(n / 256),
      context: `${this.name}.${entry}(${p.name ?? ''} ${shapeStr(p.shape)})`,
    });
  }

  /** The state (tensors by reference, as PyTorch) and the groups' hyperparameters. */
  stateDict(): OptimizerStateDict {
    const index = new Map(this.allParams().map((p, i) => [p, i]));
    const state: OptimizerStateDict['state'] = new Map();
    for (const [p, st] of this.state) {
      state.set(index.get(p)!, { step: st.step, ...Object.fromEntries(st.tensors) });
    }
    let at = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...rest } = g;
      const ids = params.map(() => at++);
      return { ...rest, params: ids };
    });
    return { state, paramGroups };
  }

  /** Restores state and hyperparameters saved by stateDict() (values are copied). */
  loadStateDict(sd: OptimizerStateDict): void {
    if (sd.paramGroups.length !== this.paramGroups.length || sd.paramGroups.some((g, i) => g.params.length !== this.paramGroups[i].params.length)) {
      throw new Error(`${this.name}.loadStateDict: the saved groups (${sd.paramGroups.map((g) => g.params.length).join(', ')} parameters) do not match this optimizer's (${this.paramGroups.map((g) => g.params.length).join(', ')})`);
    }
    const params = this.allParams();
    sd.paramGroups.forEach((saved, i) => {
      const { params: _ids, ...rest } = saved;
      Object.assign(this.paramGroups[i], rest);
    });
    this.disposeState();
    for (const [i, entry] of sd.state) {
      const p = params[i];
      if (!p) throw new Error(`${this.name}.loadStateDict: state for parameter ${i}, but there are ${params.length}`);
      const st: ParamState = { step: entry.step, tensors: new Map() };
      for (const [k, v] of Object.entries(entry)) {
        if (k === 'step') continue;
        if (!(v instanceof Tensor)) continue;
        if (v.shape.join() !== p.shape.join()) throw new Error(`${this.name}.loadStateDict: ${k} of parameter ${i} is ${shapeStr(v.shape)}, the parameter ${shapeStr(p.shape)}`);
        const t = keep(Tensor.empty(p.shape, k));
        copyInto(t, v);
        st.tensors.set(k, t);
      }
      this.state.set(p, st);
    }
  }

  private disposeState(): void {
    for (const st of this.state.values()) for (const t of st.tensors.values()) t.dispose();
    this.state.clear();
  }

  /** Frees the state tensors (the parameters are the caller's). */
  dispose(): void {
    this.disposeState();
  }
}
