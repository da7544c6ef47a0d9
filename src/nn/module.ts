// nn.Module: a tree of named parameters, buffers and child modules with PyTorch's state_dict
// naming ("layer1.0.conv1.weight"), train/eval mode, and loadStateDict with strict key and shape
// checks. Subclasses register with `param()`, `buffer()` and `child()`, which return what they
// register, so fields can hold them: `this.weight = this.param('weight', randn([4, 3]))`.
// loadStateDict copies values into the registered tensors, so such fields stay valid.
// A module's forward runs inside a scope: whatever it makes and does not return is freed (what the
// autograd graph needs lives on until backward), so forwards hold no dispose() calls; registered
// parameters and buffers are kept out of every scope.
import { noGrad } from '../autograd.js';
import { keep, scope } from '../scope.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor, shapeStr } from '../tensor.js';
import { contiguous } from '../ops/shape.js';

export type StateDict = Map<string, Tensor>;

export interface LoadResult {
  missing: string[];
  unexpected: string[];
}

export class Module {
  training = true;
  private _params = new Map<string, Tensor | null>();
  private _buffers = new Map<string, Tensor | null>();
  private _children = new Map<string, Module>();

  constructor() {
    // The subclass's forward (found through the prototype chain) runs inside a scope.
    const forward = (this as { forward?: (...args: unknown[]) => unknown }).forward;
    if (typeof forward === 'function') {
      Object.defineProperty(this, 'forward', {
        value: (...args: unknown[]) => scope(() => forward.apply(this, args)),
        writable: true,
        configurable: true,
      });
    }
  }

  /** Registers a parameter under `name` and returns it. */
  param(name: string, t: Tensor | null): Tensor {
    if (t) {
      keep(t);
      t.requiresGrad = true;
      t.name = name;
    }
    this._params.set(name, t);
    return t as Tensor;
  }

  /** Registers a non-trainable state tensor (e.g. BatchNorm's running mean), saved in stateDict. */
  buffer(name: string, t: Tensor | null): Tensor {
    if (t) keep(t).name = name;
    this._buffers.set(name, t);
    return t as Tensor;
  }

  /** Registers a child module under `name` and returns it. */
  child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  getParam(name: string): Tensor | null {
    return this._params.get(name) ?? null;
  }
  getBuffer(name: string): Tensor | null {
    return this._buffers.get(name) ?? null;
  }
  /** Replaces a registered buffer (e.g. updated running statistics), disposing the old one. */
  setBuffer(name: string, t: Tensor): void {
    const old = this._buffers.get(name);
    if (old && old !== t) old.dispose();
    keep(t).name = name;
    this._buffers.set(name, t);
  }

  children(): [string, Module][] {
    return [...this._children.entries()];
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, c] of this._children) yield* c.namedModules(prefix ? `${prefix}.${n}` : n);
  }

  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    for (const [p, m] of this.namedModules(prefix)) {
      for (const [n, t] of m._params) if (t) yield [p ? `${p}.${n}` : n, t];
    }
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  *namedBuffers(prefix = ''): Generator<[string, Tensor]> {
    for (const [p, m] of this.namedModules(prefix)) {
      for (const [n, t] of m._buffers) if (t) yield [p ? `${p}.${n}` : n, t];
    }
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /**
   * Frees the module's GPU memory at once: every parameter's gradient, then every parameter and
   * buffer (a gradient left on a disposed parameter would wait for garbage collection). The module
   * cannot run afterwards.
   */
  dispose(): void {
    for (const t of this.stateDict().values()) {
      t.zeroGrad();
      t.dispose();
    }
  }

  /**
   * Parameters and buffers by their PyTorch state_dict keys (the tensors themselves, not copies), in
   * PyTorch's order: module by module, each module's parameters, then its buffers.
   */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [p, m] of this.namedModules()) {
      for (const kind of [m._params, m._buffers]) for (const [n, t] of kind) if (t) out.set(p ? `${p}.${n}` : n, t);
    }
    return out;
  }

  /**
   * Copies tensors in by key. Shapes must match exactly. With strict (default), missing and
   * unexpected keys are an error listing them; without, they are returned.
   */
  loadStateDict(dict: Map<string, Tensor> | Record<string, Tensor>, options: { strict?: boolean } = {}): LoadResult {
    const strict = options.strict ?? true;
    const src = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const targets = new Map<string, { m: Module; kind: '_params' | '_buffers'; name: string }>();
    for (const [p, m] of this.namedModules()) {
      for (const kind of ['_params', '_buffers'] as const) {
        for (const [n, t] of m[kind]) if (t) targets.set(p ? `${p}.${n}` : n, { m, kind, name: n });
      }
    }
    const missing = [...targets.keys()].filter((k) => !src.has(k));
    const unexpected = [...src.keys()].filter((k) => !targets.has(k));
    const misShaped: string[] = [];
    for (const [k, t] of src) {
      const tgt = targets.get(k);
      if (!tgt) continue;
      const cur = tgt.m[tgt.kind].get(tgt.name)!;
      if (cur.shape.join() !== t.shape.join()) misShaped.push(`${k}: checkpoint ${shapeStr(t.shape)}, model ${shapeStr(cur.shape)}`);
    }
    const list = (xs: string[]) => `${xs.slice(0, 5).join(', ')}${xs.length > 5 ? `, ... (${xs.length} in all)` : ''}`;
    const problems: string[] = [];
    if (misShaped.length) problems.push(`mis-shaped: ${list(misShaped)}`);
    if (strict && missing.length) problems.push(`missing: ${list(missing)}`);
    if (strict && unexpected.length) problems.push(`unexpected: ${list(unexpected)}`);
    if (problems.length) throw new Error(`loadStateDict: ${problems.join('; ')}`);
    // Copy into the existing tensors, so references held elsewhere (fields, optimisers) stay valid.
    for (const [k, t] of src) {
      const tgt = targets.get(k);
      if (!tgt) continue;
      const cur = tgt.m[tgt.kind].get(tgt.name)!;
      copyInto(cur, t);
    }
    return { missing, unexpected };
  }
}

/** Copies src's values into dst (same shape; dst contiguous), on the GPU. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (!dst.isContiguous()) throw new Error(`copyInto: destination ${dst.name ?? shapeStr(dst.shape)} is not contiguous`);
  scope(() => {
    const s = src.isContiguous() ? src : noGrad(() => contiguous(src));
    runtime().copy(s.buffer, s.offset * 4, dst.buffer, dst.offset * 4, dst.size * 4);
  });
}
