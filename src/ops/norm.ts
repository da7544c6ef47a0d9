// Normalisation ops, forward and backward: batchNorm (training with batch statistics and
// running-stat updates, or eval with running statistics), groupNorm, layerNorm over the last dims,
// layerNorm2d (over the channels of NCHW, SAM's LayerNorm2d) and weight standardisation
// (TransUNet's StdConv2d). All run shaders/norm.wgsl, whose rows and affine channels are index maps
// over the contiguous input (see its header); statistics are two-pass in f32.
// Few very long rows (batch norm over a volume) are split into chunks over many workgroups.
// Backward: dx by the row kernel (dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight;
// with fixed statistics dx = rstd * g); dweight = sum(dy * xhat) and dbias = sum(dy) over all but
// the channel dims, with xhat rebuilt from the saved per-row mean and rstd.
import { needsGrad, noGrad, record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { scope } from '../scope.js';
import { LOOP_BUDGET } from './loop-budget.js';
import { registerKernelFamily } from '../gpu/variants.js';
import { Tensor, contiguousStrides, numel, shapeStr } from '../tensor.js';
import { contiguous, denseAt0, reshape } from './shape.js';
import { sum } from './reduce.js';
import { mul, sub } from './elementwise.js';

/** How one norm maps onto the row kernel, and how its statistics broadcast for the parameter grads. */
interface RowMap {
  nRows: number;
  rowLen: number;
  R1: number;
  sr0: number;
  sr1: number;
  E1: number;
  se0: number;
  se1: number;
  chR: number;
  chE0: number;
  chE1: number;
  /** x viewed so the per-row statistics broadcast against it */
  view: number[];
  /** the statistics' shape in that view (keepdim form) */
  statShape: number[];
  /** dims of `view` that the weight/bias gradients sum over */
  paramReduce: number[];
}

/**
 * The longest row one workgroup normalises and the longest chunk: 2 loops of a 64th of it per
 * invocation stay under LOOP_BUDGET (llvmpipe leaves the loops after 65535 passes, shaders/norm.wgsl).
 */
const WORKGROUP_ROW = 64 * 4096;

/** The longest row one invocation normalises: the serial forward's three loops over it stay within LOOP_BUDGET. */
const SERIAL_ROW = Math.floor((LOOP_BUDGET - 3) / 3);

/** How rows are normalised: by one invocation each, one workgroup each, or in chunks (elements per chunk). */
interface RowPlan {
  kind: 'serial' | 'workgroup' | 'chunked';
  chunk: number;
}

/** The shortest chunk on CPU adapters (see chunked). */
const CPU_CHUNK = 65536;

/**
 * Splits rows longer than `chunk`. The default: a 256th of the row, at least 4096 elements, or on
 * CPU adapters 65536, where each workgroup's reduction costs more than the parallelism of many
 * chunks gives (batch norm over 16 rows of 1M: SwiftShader 312 ms against 575 in chunks of 4096;
 * llvmpipe 150 against 144).
 */
function chunked(m: RowMap, chunk = Math.max(runtime().adapterKind === 'cpu' ? CPU_CHUNK : 4096, Math.ceil(m.rowLen / 256))): RowPlan {
  return m.rowLen > chunk ? { kind: 'chunked', chunk: Math.min(chunk, WORKGROUP_ROW) } : { kind: m.rowLen >= 128 ? 'workgroup' : 'serial', chunk: 0 };
}

export const normKernels = registerKernelFamily<RowMap>({
  family: 'norm',
  variants: [
    { name: 'serial', description: 'one invocation per row, exact two passes (short rows; on CPU adapters many rows up to 5460 elements)', applies: (m) => m.rowLen <= SERIAL_ROW },
    { name: 'workgroup', description: 'one workgroup per row, shifted-sum statistics in one reduction', applies: (m) => m.rowLen <= WORKGROUP_ROW },
    { name: 'chunked', description: 'rows split into chunks whose statistics are merged (few long rows); param chunk: elements per chunk', applies: () => true },
  ],
  // Few long rows would leave most of the GPU idle in one workgroup each; rows longer than one
  // workgroup may loop over are always chunked. A CPU adapter runs a workgroup on one thread, so
  // there a row per workgroup keeps the threads busy down to a few rows, and merging chunks costs
  // more than it spreads (groupNorm 1x256x56x56 in 32 groups: SwiftShader 18 ms against 46 chunked,
  // llvmpipe 3.9 against 4.9); and an invocation per row wins wherever it may loop over the row and
  // there are rows for every thread: the workgroup reduction's barriers cost more than they save
  // (SwiftShader, 2 cores: layerNorm 1024x768 20 ms against 58, LayerNorm2d of 1x256x64x64 27
  // against 207; llvmpipe 2.5 against 4.1 and 3.2 against 9.3).
  choose: (m, adapter) =>
    m.rowLen > WORKGROUP_ROW || (adapter === 'cpu' ? m.nRows < 16 && m.rowLen > CPU_CHUNK : m.nRows < 128 && m.rowLen >= 16384)
      ? 'chunked'
      : m.rowLen < 128 || (adapter === 'cpu' && m.rowLen <= SERIAL_ROW && m.nRows >= 256)
        ? 'serial'
        : 'workgroup',
});

function rowPlan(m: RowMap): RowPlan {
  const c = normKernels.pick(m);
  const name = c.variant.name;
  if (name === 'chunked') return chunked(m, c.params.chunk);
  return { kind: name as RowPlan['kind'], chunk: 0 };
}

/** norm.wgsl's ELEMS: which level of the element map is trivial (1: one run, E1 = rowLen; 2: E1 = 1; 0: neither). */
const elemsMap = (m: RowMap): number => (m.E1 === m.rowLen ? 1 : m.E1 === 1 ? 2 : 0);

/** A dense handle of t starting at element 0 (the kernel indexes weight and bias from 0), no grad node. */
const dense = (t: Tensor): Tensor => noGrad(() => denseAt0(t));

interface NormSpec {
  op: string;
  map: RowMap;
  weight: Tensor | null;
  bias: Tensor | null;
  eps: number;
  /** fixed statistics from running buffers (batch norm eval) */
  fixed?: boolean;
  running?: { mean: Tensor; var: Tensor; momentum: number } | null;
}

function launchForward(x: Tensor, s: NormSpec): { out: Tensor; stats: Tensor } {
  const m = s.map;
  const out = Tensor.empty(x.shape, s.op);
  const stats = Tensor.empty([2 * m.nRows], `${s.op} statistics`);
  if (x.size === 0) return { out, stats };
  const { kind, chunk } = rowPlan(m);
  const chunks = chunk ? Math.ceil(m.rowLen / chunk) : 0;
  const rm = s.running?.mean ?? null;
  const rv = s.running?.var ?? null;
  const rt = runtime();
  const params = rowParams(m, x.offset, s, !s.fixed && !!s.running, x.offset, chunk, chunks);
  const context = `${s.op}(${shapeStr(x.shape)})`;
  const overrides = { MODE: s.fixed ? 1 : 0, ELEMS: elemsMap(m) };
  const buffers: Record<string, GPUBuffer | null> = {
    x: x.buffer,
    weight: s.weight?.buffer ?? null,
    bias: s.bias?.buffer ?? null,
    out: out.buffer,
    stats: stats.buffer,
    running_mean: rm?.buffer ?? null,
    running_var: rv?.buffer ?? null,
  };
  if (kind === 'chunked') {
    const partial = s.fixed ? null : Tensor.empty([m.nRows * chunks * 3], `${s.op} chunk statistics`);
    if (partial) {
      rt.dispatch({ kernel: 'norm', entry: 'norm_chunk_stats', overrides, params, buffers: { x: x.buffer, partial: partial.buffer }, workgroups: [chunks, m.nRows, 1], context });
    }
    rt.dispatch({ kernel: 'norm', entry: 'norm_chunk_apply', overrides, params, buffers: { ...buffers, partial: partial?.buffer ?? null }, workgroups: [chunks, m.nRows, 1], context });
    return { out, stats };
  }
  rt.dispatch({
    kernel: 'norm',
    entry: kind === 'workgroup' ? 'norm_forward_workgroup' : 'norm_forward_serial',
    overrides,
    params,
    buffers,
    workgroups: kind === 'workgroup' ? m.nRows : Math.ceil(m.nRows / 64),
    context,
  });
  return { out, stats };
}

function rowParams(m: RowMap, offset: number, s: NormSpec, updateRunning: boolean, dyOffset = offset, chunk = 0, chunks = 0) {
  return {
    n_rows: m.nRows,
    row_len: m.rowLen,
    R1: m.R1,
    sr0: m.sr0,
    sr1: m.sr1,
    E1: m.E1,
    se0: m.se0,
    se1: m.se1,
    ch_r: m.chR,
    ch_e0: m.chE0,
    ch_e1: m.chE1,
    x_offset: offset,
    dy_offset: dyOffset,
    has_weight: s.weight ? 1 : 0,
    has_bias: s.bias ? 1 : 0,
    update_running: updateRunning ? 1 : 0,
    eps: s.eps,
    momentum: s.running?.momentum ?? 0,
    chunk,
    chunks,
  };
}

function launchBackward(x: Tensor, g: Tensor, stats: Tensor, s: NormSpec): Tensor {
  const m = s.map;
  const dx = Tensor.empty(x.shape, `${s.op} backward`);
  if (x.size === 0) return dx;
  const { kind, chunk } = rowPlan(m);
  const chunks = chunk ? Math.ceil(m.rowLen / chunk) : 0;
  const rt = runtime();
  const params = rowParams(m, x.offset, s, false, g.offset, chunk, chunks);
  const overrides = { MODE: s.fixed ? 1 : 0, ELEMS: elemsMap(m) };
  const context = `${s.op} backward(${shapeStr(x.shape)})`;
  const buffers: Record<string, GPUBuffer | null> = { x: x.buffer, dy: g.buffer, weight: s.weight?.buffer ?? null, saved: stats.buffer, dx: dx.buffer };
  if (kind === 'chunked') {
    const partial = s.fixed ? null : Tensor.empty([m.nRows * chunks * 2], `${s.op} backward chunk sums`);
    if (partial) {
      rt.dispatch({ kernel: 'norm', entry: 'norm_chunk_backward_sums', overrides, params, buffers: { x: x.buffer, dy: g.buffer, weight: buffers.weight, saved: stats.buffer, partial: partial.buffer }, workgroups: [chunks, m.nRows, 1], context });
    }
    rt.dispatch({ kernel: 'norm', entry: 'norm_chunk_backward_apply', overrides, params, buffers: { ...buffers, partial: partial?.buffer ?? null }, workgroups: [chunks, m.nRows, 1], context });
    return dx;
  }
  rt.dispatch({
    kernel: 'norm',
    entry: kind === 'workgroup' ? 'norm_backward_workgroup' : 'norm_backward_serial',
    overrides,
    params,
    buffers,
    workgroups: kind === 'workgroup' ? m.nRows : Math.ceil(m.nRows / 64),
    context,
  });
  return dx;
}

/**
 * Runs a norm described by `s` on x with autograd through x, weight and bias. The launchers'
 * temporaries (chunk partials) are freed by this scope, or by the backward rule's.
 */
function normalize(x: Tensor, s: NormSpec): Tensor {
  return scope(() => {
    const xc = dense(x);
    const wc = s.weight ? dense(s.weight) : null;
    const bc = s.bias ? dense(s.bias) : null;
    const spec: NormSpec = { ...s, weight: wc, bias: bc };
    const { out, stats } = launchForward(xc, spec);
    const { weight, bias, map: m } = s;
    return record(s.op, out, [x, weight, bias], (g) => {
      const gc = contiguous(g);
      // xhat = (x - mean) * rstd in the broadcast view; dw = sum(dy * xhat), db = sum(dy) over the non-channel dims
      const stat = (k: number) => stats.view(m.statShape, contiguousStrides(m.statShape), stats.offset + k * m.nRows);
      const xhat = () => mul(sub(reshape(xc, m.view), stat(0)), stat(1));
      return [
        x.requiresGrad ? launchBackward(xc, gc, stats, spec) : null,
        weight?.requiresGrad ? reshape(sum(mul(reshape(gc, m.view), xhat()), m.paramReduce), weight.shape) : null,
        bias?.requiresGrad ? reshape(sum(reshape(gc, m.view), m.paramReduce), bias.shape) : null,
      ];
    }, [xc, wc, bc, stats]);
  });
}

function checkParam(op: string, t: Tensor | null, n: number, what: string, shape?: readonly number[]): void {
  if (!t) return;
  const ok = shape ? t.shape.join() === shape.join() : t.ndim === 1 && t.shape[0] === n;
  if (!ok) throw new Error(`${op}: ${what} ${shapeStr(t.shape)} must be ${shapeStr(shape ?? [n])}`);
}

/**
 * Batch normalisation over [N, C, ...]: statistics per channel over batch and space. Training uses
 * the batch statistics and, when running buffers are given, moves them in place by `momentum`
 * (running_var toward the unbiased variance, as PyTorch); eval uses the running statistics.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  training = false,
  momentum = 0.1,
  eps = 1e-5,
): Tensor {
  const op = `batchNorm(${shapeStr(x.shape)})`;
  if (x.ndim < 2) throw new Error(`${op}: input must be [N, C, ...]`);
  const [N, C] = x.shape;
  const S = numel(x.shape.slice(2));
  checkParam(op, weight, C, 'weight');
  checkParam(op, bias, C, 'bias');
  checkParam(op, runningMean, C, 'runningMean');
  checkParam(op, runningVar, C, 'runningVar');
  if (!training && (!runningMean || !runningVar)) throw new Error(`${op}: eval mode needs runningMean and runningVar`);
  if (training && N * S < 2) throw new Error(`${op}: training needs more than one value per channel, got input ${shapeStr(x.shape)}`);
  for (const t of [runningMean, runningVar]) {
    if (t && (!t.isContiguous() || t.offset !== 0 || t.requiresGrad)) throw new Error(`${op}: running statistics must be contiguous buffers without gradients`);
  }
  const map: RowMap = {
    nRows: C,
    rowLen: N * S,
    R1: C,
    sr0: 0,
    sr1: S,
    E1: S,
    se0: C * S,
    se1: 1,
    chR: 1,
    chE0: 0,
    chE1: 0,
    view: [N, C, S],
    statShape: [1, C, 1],
    paramReduce: [0, 2],
  };
  const running = runningMean && runningVar ? { mean: runningMean, var: runningVar, momentum } : null;
  return normalize(x, { op, map, weight, bias, eps, fixed: !training, running });
}

/** Group normalisation over [N, C, ...]: statistics per sample and group of C/numGroups channels. */
export function groupNorm(x: Tensor, numGroups: number, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const op = `groupNorm(${shapeStr(x.shape)}, groups=${numGroups})`;
  if (x.ndim < 2) throw new Error(`${op}: input must be [N, C, ...]`);
  const [N, C] = x.shape;
  if (!Number.isInteger(numGroups) || numGroups < 1 || C % numGroups) throw new Error(`${op}: ${numGroups} groups must divide C=${C}`);
  checkParam(op, weight, C, 'weight');
  checkParam(op, bias, C, 'bias');
  const S = numel(x.shape.slice(2));
  const G = numGroups;
  const Cg = C / G;
  const map: RowMap = {
    nRows: N * G,
    rowLen: Cg * S,
    R1: G,
    sr0: C * S,
    sr1: Cg * S,
    E1: S,
    se0: S,
    se1: 1,
    chR: Cg,
    chE0: 1,
    chE1: 0,
    view: [N, G, Cg, S],
    statShape: [N, G, 1, 1],
    paramReduce: [0, 3],
  };
  return normalize(x, { op, map, weight, bias, eps });
}

/** Layer normalisation over the trailing dims given by normalizedShape. */
export function layerNorm(x: Tensor, normalizedShape: number | readonly number[], weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  const op = `layerNorm(${shapeStr(x.shape)}, ${shapeStr(ns)})`;
  if (ns.length > x.ndim || x.shape.slice(x.ndim - ns.length).join() !== ns.join()) {
    throw new Error(`${op}: normalizedShape must equal the input's trailing dims`);
  }
  checkParam(op, weight, 0, 'weight', ns);
  checkParam(op, bias, 0, 'bias', ns);
  const D = numel(ns);
  const R = numel(x.shape.slice(0, x.ndim - ns.length));
  const map: RowMap = {
    nRows: R,
    rowLen: D,
    R1: Math.max(R, 1),
    sr0: 0,
    sr1: D,
    E1: D,
    se0: 0,
    se1: 1,
    chR: 0,
    chE0: 0,
    chE1: 1,
    view: [R, D],
    statShape: [R, 1],
    paramReduce: [0],
  };
  return normalize(x, { op, map, weight, bias, eps });
}

/** SAM's LayerNorm2d: normalises each position of [N, C, H, W] over its C channels (eps 1e-6). */
export function layerNorm2d(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-6): Tensor {
  const op = `layerNorm2d(${shapeStr(x.shape)})`;
  if (x.ndim < 2) throw new Error(`${op}: input must be [N, C, ...]`);
  const [N, C] = x.shape;
  checkParam(op, weight, C, 'weight');
  checkParam(op, bias, C, 'bias');
  const S = numel(x.shape.slice(2));
  const map: RowMap = {
    nRows: N * S,
    rowLen: C,
    R1: S,
    sr0: C * S,
    sr1: 1,
    E1: 1,
    se0: S,
    se1: 0,
    chR: 0,
    chE0: 1,
    chE1: 0,
    view: [N, C, S],
    statShape: [N, 1, S],
    paramReduce: [0, 2],
  };
  return normalize(x, { op, map, weight, bias, eps });
}

/**
 * Weight standardisation (TransUNet's StdConv2d): per output channel o over its Cin*kh*kw
 * entries, (W_o - mean(W_o)) / sqrt(var(W_o) + eps) with the biased variance.
 */
export function weightStandardize(w: Tensor, eps = 1e-5): Tensor {
  const op = `weightStandardize(${shapeStr(w.shape)})`;
  if (w.ndim < 2) throw new Error(`${op}: weight must be [Cout, ...]`);
  const O = w.shape[0];
  const K = numel(w.shape.slice(1));
  const map: RowMap = {
    nRows: O,
    rowLen: K,
    R1: Math.max(O, 1),
    sr0: 0,
    sr1: K,
    E1: K,
    se0: 0,
    se1: 1,
    chR: 0,
    chE0: 0,
    chE1: 0,
    view: [O, K],
    statShape: [O, 1],
    paramReduce: [0],
  };
  return normalize(w, { op, map, weight: null, bias: null, eps });
}
