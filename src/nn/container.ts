// Containers with PyTorch's child names: nn.Sequential (children "0", "1", ... applied in order)
// and nn.ModuleList (indexed children, no forward of its own), so state_dict keys read "0.weight".
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

/** A module with a one-tensor forward. */
export interface Forward {
  forward(x: Tensor): Tensor;
}

export class Sequential extends Module implements Forward {
  private readonly layers: (Module & Forward)[];

  constructor(...modules: (Module & Forward)[]) {
    super();
    this.layers = modules.map((m, i) => this.child(String(i), m));
  }

  get length(): number {
    return this.layers.length;
  }

  get(i: number): Module & Forward {
    const m = this.layers[i < 0 ? i + this.layers.length : i];
    if (!m) throw new RangeError(`nn.Sequential: index ${i} is out of range for ${this.layers.length} modules`);
    return m;
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.layers) y = m.forward(y);
    return y;
  }

  [Symbol.iterator](): Iterator<Module & Forward> {
    return this.layers[Symbol.iterator]();
  }
}

export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(modules: readonly M[] = []) {
    super();
    for (const m of modules) this.append(m);
  }

  append(m: M): this {
    this.items.push(this.child(String(this.items.length), m));
    return this;
  }

  get length(): number {
    return this.items.length;
  }

  get(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (!m) throw new RangeError(`nn.ModuleList: index ${i} is out of range for ${this.items.length} modules`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
