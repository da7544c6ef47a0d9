// softmax / logSoftmax along one dim, forward and backward (rules in shaders/softmax.wgsl).
// Rows of 256 or more use the workgroup-per-row kernels, shorter rows one invocation per row; rows
// past what one invocation or one workgroup may loop over (llvmpipe's limit) go to the next kind.
import { scope } from '../scope.js';
import { noGrad, record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor, normDim, numel, shapeStr } from '../tensor.js';
import { contiguous } from './shape.js';
import { LOOP_BUDGET } from './loop-budget.js';

/** Longest row for one workgroup (2 loops of D / 64 passes), and the chunk of longer rows. */
const WORKGROUP_ROW = 64 * 8160;
const CHUNK = 64 * 4096;

function launch(entry: 'forward' | 'backward', log: boolean, x: Tensor, dy: Tensor | null, dim: number, name: string): Tensor {
  const outer = numel(x.shape.slice(0, dim));
  const D = x.shape[dim];
  const inner = numel(x.shape.slice(dim + 1));
  const out = Tensor.empty(x.shape, name);
  const rows = outer * inner;
  if (rows === 0 || D === 0) return out;
  // At most LOOP_BUDGET loop passes per invocation (shaders/softmax.wgsl): serial rows run 3 loops
  // over D, workgroup rows 2 loops over D / 64; longer rows are split into chunks.
  const serialOk = 3 * D + 3 <= LOOP_BUDGET;
  const kind = serialOk && !(D >= 256 && rows < 8192) ? 'serial' : D <= WORKGROUP_ROW ? 'workgroup' : 'chunk';
  const chunks = kind === 'chunk' ? Math.ceil(D / CHUNK) : 0;
  const buffers: Record<string, GPUBuffer> = { x: x.storage.buffer, out: out.storage.buffer };
  if (dy) buffers.dy = dy.storage.buffer;
  const rt = runtime();
  const overrides = { LOG: log ? 1 : 0 };
  const params = { outer, dim: D, inner, x_offset: x.offset, dy_offset: dy ? dy.offset : 0, chunk: chunks ? CHUNK : 0, chunks };
  const context = `${name}(${shapeStr(x.shape)}, dim=${dim})`;
  if (kind === 'chunk') {
    const partial = Tensor.empty([rows * chunks * 2], `${name} chunk partials`);
    const [gy, gz] = rt.grid(rows);
    const first: Record<string, GPUBuffer> = entry === 'forward' ? { x: buffers.x } : { x: buffers.x, dy: buffers.dy };
    rt.dispatch({ kernel: 'softmax', entry: `${entry}_chunk_${entry === 'forward' ? 'stats' : 'dot'}`, overrides, params, buffers: { ...first, partial: partial.storage.buffer }, workgroups: [chunks, gy, gz], context });
    rt.dispatch({ kernel: 'softmax', entry: `${entry}_chunk_apply`, overrides, params, buffers: { ...buffers, partial: partial.storage.buffer }, workgroups: [chunks, gy, gz], context });
    partial.dispose();
    return out;
  }
  rt.dispatch({
    kernel: 'softmax',
    entry: `${entry}_${kind}`,
    overrides,
    params,
    buffers,
    workgroups: kind === 'workgroup' ? rows : Math.ceil(rows / 64),
    context,
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
