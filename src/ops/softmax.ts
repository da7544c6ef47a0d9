// softmax / logSoftmax along one dim, forward and backward (rules in shaders/softmax.wgsl).
// Rows of 256 or more use the workgroup-per-row kernels, shorter rows one invocation per row.
import { scope } from '../scope.js';
import { noGrad, record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor, normDim, numel, shapeStr } from '../tensor.js';
import { contiguous } from './shape.js';

function launch(entry: 'forward' | 'backward', log: boolean, x: Tensor, dy: Tensor | null, dim: number, name: string): Tensor {
  const outer = numel(x.shape.slice(0, dim));
  const D = x.shape[dim];
  const inner = numel(x.shape.slice(dim + 1));
  const out = Tensor.empty(x.shape, name);
  const rows = outer * inner;
  if (rows === 0 || D === 0) return out;
  const wide = D >= 256 && rows < 8192;
  const buffers: Record<string, GPUBuffer> = { x: x.storage.buffer, out: out.storage.buffer };
  if (dy) buffers.dy = dy.storage.buffer;
  runtime().dispatch({
    kernel: 'softmax',
    entry: `${entry}_${wide ? 'workgroup' : 'serial'}`,
    overrides: { LOG: log ? 1 : 0 },
    params: { outer, dim: D, inner, x_offset: x.offset, dy_offset: dy ? dy.offset : 0 },
    buffers,
    workgroups: wide ? rows : Math.ceil(rows / 64),
    context: `${name}(${shapeStr(x.shape)}, dim=${dim})`,
  });
  return out;
}

function softmaxImpl(x: Tensor, dim: number, log: boolean): Tensor {
  const name = log ? 'logSoftmax' : 'softmax';
  const d = normDim(dim, x.ndim);
  // The kernel reads contiguous rows (at any element offset).
  const out = scope(() => launch('forward', log, x.isContiguous() ? x : noGrad(() => contiguous(x)), null, d, name));
  return record(name, out, [x], (g) => [launch('backward', log, out, g.isContiguous() ? g : contiguous(g), d, `${name} backward`)]);
}

export function softmax(x: Tensor, dim: number): Tensor {
  return softmaxImpl(x, dim, false);
}

export function logSoftmax(x: Tensor, dim: number): Tensor {
  return softmaxImpl(x, dim, true);
}
