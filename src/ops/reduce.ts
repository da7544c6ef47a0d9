// Reductions over any dims (sum, mean, amax/amin, var, argmax/argmin), keepdim as in PyTorch.
// Backward: sum/mean broadcast the gradient back; max/min split it evenly among the tied maxima
// (torch.amax's rule); var is composed from differentiable ops. Arg-reductions return f32 indices.
import { record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { scope } from '../scope.js';
import { Tensor, normDim, numel, shapeStr } from '../tensor.js';
import { coalesceDims, dims8 } from './broadcast.js';
import { Binary, Unary, ctx, elementwise } from './elementwise-kernel.js';
import { LOOP_BUDGET } from './loop-budget.js';

export type Dims = number | readonly number[] | undefined | null;

const Op = { sum: 0, max: 1, min: 2, argmax: 3, argmin: 4 } as const;

function normDims(x: Tensor, dim: Dims): number[] {
  if (dim === undefined || dim === null) return x.shape.map((_, i) => i);
  const list = typeof dim === 'number' ? [dim] : [...dim];
  const out = [...new Set(list.map((d) => normDim(d, x.ndim)))].sort((a, b) => a - b);
  return out;
}

function keptShape(x: Tensor, dims: number[], keepdim: boolean): number[] {
  const s: number[] = [];
  x.shape.forEach((n, i) => {
    if (!dims.includes(i)) s.push(n);
    else if (keepdim) s.push(1);
  });
  return s;
}

/** Runs the reduce kernel; returns a tensor of shape keptShape(x, dims, keepdim). */
function reduceKernel(x: Tensor, dims: number[], keepdim: boolean, op: number, scale: number, name: string): Tensor {
  x.assertAlive();
  const outer = x.shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const nInner = numel(dims.map((d) => x.shape[d]));
  const out = Tensor.empty(keptShape(x, dims, keepdim), name);
  const nOut = out.size;
  if (nOut === 0) return out;
  if (nInner === 0 && op !== Op.sum) throw new Error(`${name}: cannot reduce an empty dim of ${shapeStr(x.shape)}`);
  // The kept and the reduced dims, each with adjacent dims that memory walks as one merged and unit
  // dims dropped (coalesceDims; the flat orders, so the output and argmax indices, are unchanged):
  // every element costs one index division per dim, the dearest part on CPU adapters (an argmax
  // over the 2 channels of a [1, 2, 26, 166, 164] volume walks 1 + 1 dims, not 4 + 1).
  const o = coalesceDims(outer.map((d) => x.shape[d]), [outer.map((d) => x.strides[d])]);
  const r = coalesceDims(dims.map((d) => x.shape[d]), [dims.map((d) => x.strides[d])]);
  // Loop passes per element: the element loop's, and strided_offset's over the inner dims (ndim + 1).
  // One invocation runs at most LOOP_BUDGET of them (shaders/reduce.wgsl): rows longer than one
  // invocation may take go to a workgroup, rows longer than a workgroup may take are chunked.
  const perElement = r.shape.length + 2;
  const serialOk = nInner * perElement + 2 <= LOOP_BUDGET;
  const wgMax = 64 * Math.floor((LOOP_BUDGET - 16) / perElement);
  const kind = serialOk && !(nInner >= 256 && nOut < 4096) ? 'serial' : nInner <= wgMax ? 'workgroup' : 'chunk';
  const chunks = kind === 'chunk' ? Math.ceil(nInner / wgMax) : 0;
  const rt = runtime();
  const params = {
    outer_shape: dims8(o.shape),
    outer_strides: dims8(o.strides[0]),
    inner_shape: dims8(r.shape),
    inner_strides: dims8(r.strides[0]),
    outer_ndim: o.shape.length,
    inner_ndim: r.shape.length,
    n_out: nOut,
    n_inner: nInner,
    offset: x.offset,
    scale,
    chunk: kind === 'chunk' ? wgMax : 0,
    chunks,
  };
  const context = `${name}(${shapeStr(x.shape)}, dims=${shapeStr(dims)})`;
  const overrides = { OP: op };
  if (kind === 'chunk') {
    const partial = Tensor.empty([nOut * chunks * 2], `${name} chunk partials`);
    const [gy, gz] = rt.grid(nOut);
    rt.dispatch({ kernel: 'reduce', entry: 'reduce_chunk', overrides, params, buffers: { x: x.storage.buffer, chunk_out: partial.storage.buffer }, workgroups: [chunks, gy, gz], context });
    rt.dispatch({ kernel: 'reduce', entry: 'reduce_merge', overrides, params, buffers: { chunk_out: partial.storage.buffer, out: out.storage.buffer }, workgroups: nOut, context });
    partial.dispose();
    return out;
  }
  rt.dispatch({
    kernel: 'reduce',
    entry: `reduce_${kind}`,
    overrides,
    params,
    buffers: { x: x.storage.buffer, out: out.storage.buffer },
    workgroups: kind === 'workgroup' ? nOut : Math.ceil(nOut / 64),
    context,
  });
  return out;
}

/** g (x reduced over dims, with or without keepdim) viewed with x's rank: unit dims where reduced. */
function withKeptDims(g: Tensor, x: Tensor, dims: number[]): Tensor {
  if (g.ndim === x.ndim) return g.view(g.shape, g.strides);
  const shape: number[] = [];
  const strides: number[] = [];
  let j = 0;
  for (let i = 0; i < x.ndim; i++) {
    if (dims.includes(i)) {
      shape.push(1);
      strides.push(0);
    } else {
      shape.push(g.shape[j]);
      strides.push(g.strides[j++]);
    }
  }
  return g.view(shape, strides);
}

/** Broadcasts a reduced tensor back to x's shape (a contiguous copy), times `scale`. */
function spread(g: Tensor, x: Tensor, dims: number[], scale = 1): Tensor {
  return scope(() => elementwise(Unary.affine, [withKeptDims(g, x, dims)], { alpha: scale, beta: 0 }, `spread(${shapeStr(g.shape)} to ${shapeStr(x.shape)})`, Tensor.empty(x.shape)));
}

export function sum(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  const dims = normDims(x, dim);
  const out = reduceKernel(x, dims, keepdim, Op.sum, 1, 'sum');
  return record('sum', out, [x], (g) => [spread(g, x, dims)]);
}

export function mean(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  const dims = normDims(x, dim);
  const n = numel(dims.map((d) => x.shape[d]));
  const out = reduceKernel(x, dims, keepdim, Op.sum, 1 / n, 'mean');
  return record('mean', out, [x], (g) => [spread(g, x, dims, 1 / n)]);
}

function extreme(x: Tensor, dim: Dims, keepdim: boolean, op: number, name: string): Tensor {
  const dims = normDims(x, dim);
  const out = reduceKernel(x, dims, keepdim, op, 1, name);
  return record(name, out, [x], (g) => {
    // grad * (x == out) / count(x == out)
    const mask = elementwise(Binary.eq, [x, withKeptDims(out, x, dims)], {}, `${name} backward`);
    const count = reduceKernel(mask, dims, true, Op.sum, 1, `${name} backward`);
    const share = elementwise(Binary.div, [withKeptDims(g, x, dims), count], {}, `${name} backward`);
    return [elementwise(Binary.mul, [mask, share], {}, `${name} backward`)];
  });
}

/** Maximum over dims (torch.amax); over all elements when dim is omitted. */
export function max(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return extreme(x, dim, keepdim, Op.max, 'max');
}

export function min(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return extreme(x, dim, keepdim, Op.min, 'min');
}

/**
 * Index of the maximum along one dim (or over the flattened tensor: a reduction over every dim,
 * whose inner index is the row-major flat index), first on ties; f32 values.
 */
export function argmax(x: Tensor, dim?: number | null, keepdim = false): Tensor {
  return argReduce(x, dim, keepdim, Op.argmax, 'argmax');
}

export function argmin(x: Tensor, dim?: number | null, keepdim = false): Tensor {
  return argReduce(x, dim, keepdim, Op.argmin, 'argmin');
}

function argReduce(x: Tensor, dim: number | null | undefined, keepdim: boolean, op: number, name: string): Tensor {
  const all = dim === undefined || dim === null;
  return reduceKernel(x, normDims(x, all ? null : dim), all ? false : keepdim, op, 1, name);
}

export interface VarOptions {
  /** Bessel's correction: 1 (default) divides by N-1, 0 by N, as torch.var. */
  correction?: number;
  keepdim?: boolean;
}

/** Variance by two passes: mean, then the mean of squared deviations. */
export function variance(x: Tensor, dim?: Dims, options: VarOptions = {}): Tensor {
  const dims = normDims(x, dim);
  const n = numel(dims.map((d) => x.shape[d]));
  const scale = 1 / Math.max(n - (options.correction ?? 1), 0);
  return scope(() => {
    const d = elementwise(Binary.sub, [x, reduceKernel(x, dims, true, Op.sum, 1 / n, 'var')], {}, ctx('var', x));
    const out = reduceKernel(elementwise(Binary.mul, [d, d], {}, ctx('var', x)), dims, options.keepdim ?? false, Op.sum, scale, 'var');
    // d/dx sum((x - mean)^2) = 2 (x - mean): the mean's own path contributes zero.
    return record('var', out, [x], (g) => [elementwise(Binary.mul, [spread(g, x, dims, 2 * scale), d], {}, 'var backward')], [d]);
  });
}
