// Reductions over any dims (sum, mean, amax/amin, var, argmax/argmin), keepdim as in PyTorch.
// Backward: sum/mean broadcast the gradient back; max/min split it evenly among the tied maxima
// (torch.amax's rule); var is composed from differentiable ops. Arg-reductions return f32 indices.
import { noGrad, record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor, normDim, numel, shapeStr } from '../tensor.js';
import { Binary, Unary, ctx, dims8, elementwise } from './dispatch.js';
import { contiguous, expand, reshape } from './shape.js';

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
  const useWorkgroup = nInner >= 256 && nOut < 4096;
  runtime().dispatch({
    kernel: 'reduce',
    entry: useWorkgroup ? 'reduce_workgroup' : 'reduce_serial',
    overrides: { OP: op },
    params: {
      outer_shape: dims8(outer.map((d) => x.shape[d])),
      outer_strides: dims8(outer.map((d) => x.strides[d])),
      inner_shape: dims8(dims.map((d) => x.shape[d])),
      inner_strides: dims8(dims.map((d) => x.strides[d])),
      outer_ndim: outer.length,
      inner_ndim: dims.length,
      n_out: nOut,
      n_inner: nInner,
      offset: x.offset,
      scale,
      identity: op === Op.max || op === Op.argmax ? -Infinity : op === Op.min || op === Op.argmin ? Infinity : 0,
    },
    buffers: { x: x.storage.buffer, out: out.storage.buffer },
    workgroups: useWorkgroup ? nOut : Math.ceil(nOut / 64),
    context: `${name}(${shapeStr(x.shape)}, dims=${shapeStr(dims)})`,
  });
  return out;
}

/** Broadcasts a reduced gradient back to x's shape (contiguous). */
function spread(g: Tensor, x: Tensor, dims: number[]): Tensor {
  const kept = reshape(g, keptShape(x, dims, true));
  const e = expand(kept, x.shape);
  const out = contiguous(e);
  kept.dispose();
  e.dispose();
  return out;
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
  return record('mean', out, [x], (g) => {
    const s = spread(g, x, dims);
    const r = elementwise(Unary.affine, [s], { alpha: 1 / n }, 'mean backward');
    s.dispose();
    return [r];
  });
}

function extreme(x: Tensor, dim: Dims, keepdim: boolean, op: number, name: string): Tensor {
  const dims = normDims(x, dim);
  const out = reduceKernel(x, dims, keepdim, op, 1, name);
  return record(name, out, [x], (g) => {
    // grad * (x == out) / count(x == out)
    const o = spread(out, x, dims);
    const mask = elementwise(Binary.eq, [x, o], {}, `${name} backward`);
    o.dispose();
    const count = reduceKernel(mask, dims, true, Op.sum, 1, `${name} backward`);
    const gs = reshape(g, keptShape(x, dims, true));
    const share = elementwise(Binary.div, [gs, count], {}, `${name} backward`);
    gs.dispose();
    count.dispose();
    const r = elementwise(Binary.mul, [mask, share], {}, `${name} backward`);
    mask.dispose();
    share.dispose();
    return [r];
  });
}

/** Maximum over dims (torch.amax); over all elements when dim is omitted. */
export function max(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return extreme(x, dim, keepdim, Op.max, 'max');
}

export function min(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return extreme(x, dim, keepdim, Op.min, 'min');
}

/** Index of the maximum along one dim (or over the flattened tensor), first on ties; f32 values. */
export function argmax(x: Tensor, dim?: number | null, keepdim = false): Tensor {
  if (dim === undefined || dim === null) {
    const flat = noGrad(() => reshape(x, [x.size])); // internal view: argmax has no gradient
    const out = reduceKernel(flat, [0], false, Op.argmax, 1, 'argmax');
    flat.dispose();
    return out;
  }
  return reduceKernel(x, normDims(x, dim), keepdim, Op.argmax, 1, 'argmax');
}

export function argmin(x: Tensor, dim?: number | null, keepdim = false): Tensor {
  if (dim === undefined || dim === null) {
    const flat = noGrad(() => reshape(x, [x.size])); // internal view: argmax has no gradient
    const out = reduceKernel(flat, [0], false, Op.argmin, 1, 'argmin');
    flat.dispose();
    return out;
  }
  return reduceKernel(x, normDims(x, dim), keepdim, Op.argmin, 1, 'argmin');
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
  const correction = options.correction ?? 1;
  const m = reduceKernel(x, dims, true, Op.sum, 1 / n, 'var');
  const d = elementwise(Binary.sub, [x, m], {}, ctx('var', x));
  m.dispose();
  const sq = elementwise(Binary.mul, [d, d], {}, ctx('var', x));
  const out = reduceKernel(sq, dims, options.keepdim ?? false, Op.sum, 1 / Math.max(n - correction, 0), 'var');
  sq.dispose();
  // d/dx sum((x - mean)^2) = 2 (x - mean): the mean's own path contributes zero.
  return record('var', out, [x], (g) => {
    const s = spread(g, x, dims);
    const t = elementwise(Binary.mul, [s, d], {}, 'var backward');
    s.dispose();
    const r = elementwise(Unary.affine, [t], { alpha: 2 / Math.max(n - correction, 0) }, 'var backward');
    t.dispose();
    return [r];
  }, () => d.dispose());
}
