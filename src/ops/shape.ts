// Shape ops. Views that share storage (reshape, permute, transpose, expand, squeeze, unsqueeze,
// narrow) and copies (contiguous, cat, constant pad), each with its backward rule:
// reshape <-> reshape back, permute <-> inverse permute, expand <-> sum over the expanded dims,
// narrow <-> pad with zeros, cat <-> narrow per input, pad <-> narrow.
import { noGrad, record } from '../autograd.js';
import { scope } from '../scope.js';
import { Tensor, contiguousStrides, full, normDim, numel, shapeStr } from '../tensor.js';
import { Unary, ctx, elementwise } from './elementwise-kernel.js';
import { sum } from './reduce.js';

export function contiguous(x: Tensor): Tensor {
  x.assertAlive();
  const out = x.isContiguous() ? x.view(x.shape, contiguousStrides(x.shape)) : elementwise(Unary.copy, [x], {}, ctx('contiguous', x));
  return record('contiguous', out, [x], (g) => [g]);
}

/**
 * A contiguous handle on t's values starting at element 0 of its buffer, for kernels that index a
 * binding from 0: a new view when t already is one, else a copy. Not recorded (callers record
 * their op against t itself).
 */
export function denseAt0(t: Tensor): Tensor {
  if (t.isContiguous() && t.offset === 0) return t.view(t.shape, t.strides);
  return elementwise(Unary.copy, [t], {}, ctx('dense copy', t));
}

/** Explicit copy (a new storage). */
export function clone(x: Tensor): Tensor {
  const out = elementwise(Unary.copy, [x], {}, ctx('clone', x));
  return record('clone', out, [x], (g) => [g]);
}

/** A reshaped view when the layout allows one, else a reshaped copy. One dim may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const n = x.size;
  const s = [...shape];
  const neg = s.indexOf(-1);
  if (neg >= 0) {
    const rest = numel(s.filter((_, i) => i !== neg));
    s[neg] = rest === 0 ? 0 : n / rest;
  }
  if (numel(s) !== n || s.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot view ${shapeStr(x.shape)} (${n} elements) as ${shapeStr(shape)}`);
  }
  const out = scope(() => (x.isContiguous() ? x : noGrad(() => contiguous(x))).view(s, contiguousStrides(s)));
  return record('reshape', out, [x], (g) => [reshape(g, x.shape)]);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const nd = x.ndim;
  const p = dims.map((d) => normDim(d, nd));
  if (p.length !== nd || new Set(p).size !== nd) throw new Error(`permute: ${shapeStr(dims)} is not a permutation of ${nd} dims`);
  const out = x.view(
    p.map((d) => x.shape[d]),
    p.map((d) => x.strides[d]),
  );
  const inv = new Array<number>(nd);
  p.forEach((d, i) => (inv[d] = i));
  return record('permute', out, [x], (g) => [permute(g, inv)]);
}

export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const p = x.shape.map((_, i) => i);
  const a = normDim(dim0, x.ndim);
  const b = normDim(dim1, x.ndim);
  [p[a], p[b]] = [p[b], p[a]];
  return permute(x, p);
}

/** Broadcast view to `shape` (-1 keeps a dim). Backward sums over the expanded dims. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const nd = shape.length;
  if (nd < x.ndim) throw new Error(`expand: cannot expand ${shapeStr(x.shape)} to fewer dims ${shapeStr(shape)}`);
  const s: number[] = [];
  const st: number[] = [];
  for (let j = 0; j < nd; j++) {
    const i = j - (nd - x.ndim);
    const have = i >= 0 ? x.shape[i] : 1;
    const want = shape[j] === -1 ? have : shape[j];
    if (have !== want && have !== 1) throw new Error(`expand: dim ${j} of ${shapeStr(x.shape)} cannot expand to ${shapeStr(shape)}`);
    s.push(want);
    st.push(i >= 0 && have === want ? x.strides[i] : 0);
  }
  const out = x.view(s, st);
  return record('expand', out, [x], (g) => [sumToShape(g, x.shape)]);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim(dim, x.ndim + 1);
  const s = [...x.shape];
  s.splice(d, 0, 1);
  return reshape(x, s);
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const d = normDim(dim, x.ndim);
  if (x.shape[d] !== 1) return reshape(x, x.shape);
  return reshape(x, x.shape.filter((_, i) => i !== d));
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  const a = normDim(startDim, x.ndim);
  const b = normDim(endDim, x.ndim);
  const s = [...x.shape.slice(0, a), numel(x.shape.slice(a, b + 1)), ...x.shape.slice(b + 1)];
  return reshape(x, s);
}

/** View of `length` entries along `dim` starting at `start` (torch.narrow). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normDim(dim, x.ndim);
  if (start < 0) start += x.shape[d];
  if (start < 0 || length < 0 || start + length > x.shape[d]) {
    throw new RangeError(`narrow: [${start}, ${start + length}) is outside dim ${d} of ${shapeStr(x.shape)}`);
  }
  const s = [...x.shape];
  s[d] = length;
  const out = x.view(s, x.strides, x.offset + start * x.strides[d]);
  return record('narrow', out, [x], (g) => {
    const pads = new Array<number>(2 * x.ndim).fill(0);
    // F.pad order: last dim first
    const k = x.ndim - 1 - d;
    pads[2 * k] = start;
    pads[2 * k + 1] = x.shape[d] - start - length;
    return [pad(g, pads)];
  });
}

/** Sums `g` over broadcast dims so it has `shape` (the backward of broadcasting). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.join() === shape.join()) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  }
  return scope(() => reshape(sum(g, dims, true), shape));
}

/** Concatenates along `dim`; all other dims must match. */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error('cat: needs at least one tensor');
  const first = tensors[0];
  const d = normDim(dim, first.ndim);
  let total = 0;
  for (const t of tensors) {
    if (t.ndim !== first.ndim || t.shape.some((s, i) => i !== d && s !== first.shape[i])) {
      throw new Error(`cat: shapes ${tensors.map((x) => shapeStr(x.shape)).join(', ')} differ outside dim ${d}`);
    }
    total += t.shape[d];
  }
  const shape = [...first.shape];
  shape[d] = total;
  const out = Tensor.empty(shape, 'cat');
  const starts: number[] = [];
  let at = 0;
  scope(() => {
    for (const t of tensors) {
      starts.push(at);
      elementwise(Unary.copy, [t], {}, ctx('cat', ...tensors), out.view(t.shape, out.strides, at * out.strides[d]));
      at += t.shape[d];
    }
  });
  return record('cat', out, [...tensors], (g) => tensors.map((t, i) => (t.requiresGrad ? contiguous(narrow(g, d, starts[i], t.shape[d])) : null)));
}

/**
 * Constant padding with F.pad's convention: `pads` lists (before, after) pairs starting from the
 * last dim. Negative pads crop.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 || pads.length / 2 > x.ndim) throw new Error(`pad: ${pads.length} pad values for a ${x.ndim}-d tensor`);
  const before = new Array<number>(x.ndim).fill(0);
  const after = new Array<number>(x.ndim).fill(0);
  for (let k = 0; k < pads.length / 2; k++) {
    const d = x.ndim - 1 - k;
    before[d] = pads[2 * k];
    after[d] = pads[2 * k + 1];
  }
  const shape = x.shape.map((s, i) => s + before[i] + after[i]);
  if (shape.some((s) => s < 0)) throw new Error(`pad: padding ${shapeStr(pads)} makes a negative size from ${shapeStr(x.shape)}`);
  // The part of x that survives (negative pads crop it) and where it lands in the output.
  const srcShape = x.shape.map((n, d) => Math.max(0, n - Math.max(0, -before[d]) - Math.max(0, -after[d])));
  const srcOffset = x.offset + x.strides.reduce((acc, st, d) => acc + Math.max(0, -before[d]) * st, 0);
  const dstOffset = before.reduce((acc, b, d) => acc + Math.max(0, b) * contiguousStrides(shape)[d], 0);
  const out = full(shape, value);
  if (numel(srcShape) > 0) {
    scope(() => {
      elementwise(Unary.copy, [x.view(srcShape, x.strides, srcOffset)], {}, ctx('pad', x), out.view(srcShape, out.strides, dstOffset));
    });
  }
  return record('pad', out, [x], (g) => {
    const negated = pads.map((p) => -p);
    return [pad(g, negated)];
  });
}
