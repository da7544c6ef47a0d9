// Tensor lifetimes by scope (TF.js's tidy): `scope(fn)` frees every tensor created while fn runs,
// except what fn returns (handed to the enclosing scope, or to the caller at top level) and what
// `keep()` marks as long-lived (parameters, buffers, optimiser state, leaf gradients). A freed tensor
// that the autograd graph still needs (an input or saved tensor of a recorded node, or an output
// whose node has not run backward yet) stays alive until backward() has used it: dispose() is
// deferred for it (see Tensor.freeIfUnused). Backward rules and module forwards run inside a scope,
// so op and model code frees nothing by hand. Tensors made outside any scope belong to the caller.
import type { Tensor } from './tensor.js';

class Scope {
  readonly tensors = new Set<Tensor>();
  constructor(readonly parent: Scope | null) {}
}

let current: Scope | null = null;
const owner = new WeakMap<Tensor, Scope>();

/** Called by the Tensor constructor: the innermost open scope owns the new tensor. */
export function track(t: Tensor): void {
  if (!current) return;
  current.tensors.add(t);
  owner.set(t, current);
}

/** Takes t out of every scope: it lives until disposed (or garbage-collected). Returns t. */
export function keep<T extends Tensor | null | undefined>(t: T): T {
  if (t) {
    owner.get(t)?.tensors.delete(t);
    owner.delete(t);
  }
  return t;
}

/** Whether a scope is open (tensors made now are freed when it closes unless returned or kept). */
export function inScope(): boolean {
  return current !== null;
}

/**
 * Runs fn and frees every tensor it created except the ones in its result (a tensor, or arrays,
 * plain objects and Maps holding tensors, searched to any depth). fn must be synchronous.
 */
export function scope<T>(fn: () => T): T {
  const s = new Scope(current);
  current = s;
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) throw new Error('scope(fn): fn must be synchronous; wrap only the tensor ops, not awaits');
  } catch (e) {
    current = s.parent;
    for (const t of s.tensors) disposeOwned(t, s);
    throw e;
  }
  current = s.parent;
  const out = new Set<Tensor>();
  collectTensors(result, out, new Set());
  for (const t of out) {
    if (owner.get(t) !== s) continue;
    s.tensors.delete(t);
    if (s.parent) {
      s.parent.tensors.add(t);
      owner.set(t, s.parent);
    } else owner.delete(t);
  }
  for (const t of s.tensors) disposeOwned(t, s);
  return result;
}

function disposeOwned(t: Tensor, s: Scope): void {
  if (owner.get(t) === s) owner.delete(t);
  t.dispose();
}

function collectTensors(v: unknown, out: Set<Tensor>, seen: Set<object>): void {
  if (v === null || typeof v !== 'object' || seen.has(v)) return;
  seen.add(v);
  if (owner.has(v as Tensor)) out.add(v as Tensor); // only tensors this or an outer scope owns matter
  else if (Array.isArray(v)) for (const x of v) collectTensors(x, out, seen);
  else if (v instanceof Map) for (const x of v.values()) collectTensors(x, out, seen);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collectTensors(x, out, seen);
}
