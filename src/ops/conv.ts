// Convolution family: conv1d/2d/3d and convTranspose2d/3d (PyTorch semantics and layouts), one
// N-d design in shaders/conv.wgsl (1d and 2d run as 3d with unit dims), with a fused epilogue
// (bias, residual add, relu/elu/prelu/gelu), forward and backward side by side.
// Stride-1, undilated, ungrouped convs on CPU adapters run the direct kernels instead
// (shaders/conv_direct.wgsl): the implicit GEMM's loaders cost about two memory loads per FMA, and on
// SwiftShader and llvmpipe a load costs far more than an FMA, so register blocking there is worth
// 10-20x (llvmpipe, V-Net's 8->8 5x5x5 conv: 0.17 -> 2.9 GFLOP/s). This departs from the one-design
// rule of DESIGN.md for that reason; GPUs keep the implicit GEMM until measured there.
//
// Forward, per group, with i = o*s - p + k*dil (p the leading padding of each axis):
//   conv:       y[b, co, o] = sum_{ci, k} W[co, ci, k] * x[b, ci, o*s - p + k*dil]
//   transposed: y[b, co, j] = sum_{ci, k} W[ci, co, k] * x[b, ci, i]  over i*s - p + k*dil = j,
//               i.e. the gather form: x[b, ci, (j + p - k*dil)/s] where the division is exact.
// Backward of conv (differentiate y with respect to each x[b, ci, i] and W[co, ci, k]):
//   dX[b, ci, i] = sum_{co, k : (i + p - k*dil) = o*s} W[co, ci, k] * dY[b, co, o]
//                = a transposed conv of dY with the same W, stride, padding and dilation, whose
//                  output size is x's (W [Cout, Cin/g, k] is already the transposed layout
//                  [in = Cout, out/g = Cin/g, k]);
//   dW[co, ci, k] = sum_{b, o} dY[b, co, o] * x[b, ci, o*s - p + k*dil]
//                 = the correlation of x with dY, reduced over batch and space (f32, split over
//                   the reduction and summed when it is long);
//   db[co] = sum_{b, o} dY[b, co, o].
// Backward of the transposed conv (the same sums read the other way):
//   dX[b, ci, i] = sum_{co, k} W[ci, co, k] * dY[b, co, i*s - p + k*dil] = a conv of dY with W read
//                  as a conv weight [Cout_c = Cin, Cin_c/g = Cout/g, k], output size x's;
//   dW[ci, co, k] = sum_{b, i} x[b, ci, i] * dY[b, co, i*s - p + k*dil] = the same correlation
//                   kernel with x in the role of dY and dY in the role of x.
// Fused epilogue y = act(c + bias) + r (or act(c + bias + r) with residualBeforeActivation):
// the kernel stores the pre-activation q when a gradient is needed; dq = act'(q) * dy, the
// residual gets dy (or dq), and dq flows into the rules above.
import { needsGrad, noGrad, record } from '../autograd.js';
import { runtime, type DispatchSpec } from '../gpu/runtime.js';
import { Tensor, shapeStr } from '../tensor.js';
import { Binary, LOOP_BUDGET, Ternary, Unary, elementwise } from './dispatch.js';
import { contiguous, reshape, sumToShape } from './shape.js';
import { sum } from './reduce.js';

export type ConvVariant = 'naive' | 'tiled' | 'direct';
export type IntOrTuple = number | readonly number[];
/** An int, one int per axis, one [before, after] pair per axis, 'same' (stride 1) or 'valid'. */
export type ConvPadding = number | readonly number[] | readonly (readonly [number, number])[] | 'same' | 'valid';

export interface ConvOptions {
  stride?: IntOrTuple;
  padding?: ConvPadding;
  dilation?: IntOrTuple;
  groups?: number;
}

export interface ConvTransposeOptions {
  stride?: IntOrTuple;
  padding?: IntOrTuple;
  outputPadding?: IntOrTuple;
  dilation?: IntOrTuple;
  groups?: number;
}

export type ConvActivation = 'relu' | 'elu' | 'prelu' | 'gelu';

/** What the conv kernel applies to its result before storing it. */
export interface ConvEpilogue {
  activation?: ConvActivation | null;
  /** elu's alpha (default 1) */
  alpha?: number;
  /** prelu's weight: one slope or one per output channel */
  preluWeight?: Tensor | null;
  /** added to the output (same shape as the output) */
  residual?: Tensor | null;
  /** add the residual before the activation (act(conv + b + r)) instead of after (act(conv + b) + r) */
  residualBeforeActivation?: boolean;
}

const ACT = { none: 0, relu: 1, elu: 2, prelu: 3, gelu: 4 } as const;

let forcedVariant: ConvVariant | null = null;

/** Forces one kernel variant (tests, benchmarks); null restores the automatic choice. */
export function setConvVariant(v: ConvVariant | null): void {
  forcedVariant = v;
}

/** The implicit-GEMM variant for one launch ('direct' is chosen before, where it applies). */
function pickVariant(M: number, N: number, K: number): 'naive' | 'tiled' {
  if (forcedVariant === 'naive' || forcedVariant === 'tiled') return forcedVariant;
  // On CPU adapters a tile of 16+ rows with fewer output channels mostly computes padding
  // (measured on SwiftShader: naive 2.5x faster for 4 channels at 16^3).
  if (M < 16 && runtime().isCpuAdapter) return 'naive';
  return M * N * K >= 32 * 32 * 32 && N >= 64 && K >= 16 ? 'tiled' : 'naive';
}

// ---- the kernel launcher ----

type V3 = [number, number, number];

/** Geometry in 3d form: spatial sizes of the gathered input and of the output, kernel, stride, leading pad, dilation. */
interface Geometry {
  inSize: V3;
  outSize: V3;
  k: V3;
  s: V3;
  p: V3;
  dil: V3;
}

interface Launch {
  mode: 0 | 1 | 2;
  geom: Geometry;
  groups: number;
  batch: number;
  /** rows per group (output channels, or G channels for the weight grad) */
  M: number;
  /** channels per group of the gathered operand */
  cinG: number;
  a: Tensor;
  b: Tensor;
  context: string;
  variant?: 'naive' | 'tiled';
  /** the output's spatial dims as the caller sees them (1, 2 or 3 of them; modes 0 and 1) */
  outSpatial?: readonly number[];
}

let scratch: Tensor | null = null;
/** A small buffer bound where a kernel's optional read-write output is unused. */
function dummy(): GPUBuffer {
  if (!scratch || scratch.isDisposed) scratch = Tensor.empty([4], 'conv scratch');
  return scratch.buffer;
}

const vol = (v: readonly number[]) => v[0] * v[1] * v[2];
const v4 = (v: V3) => [...v, 0];

// ---- bounded reductions ----
// Mesa's llvmpipe counts the loop iterations of an invocation across all of its loops and, past
// 65535 (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS, "shared between every loop"), leaves every loop at
// once, with no error: long reductions came out as partial sums, and outputs stored by loops after
// them were left unwritten. So no conv kernel lets one invocation run more than LOOP_BUDGET
// iterations: each launcher counts its kernel's loops (every loop, constant trip counts and each
// loop's final exit test included, as no compiler is trusted to unroll) per step of the reduction,
// splits the reduction into chunks that fit, and a second pass sums the chunks' partials pairwise
// (sum_splits in _conv_epilogue.wgsl) and applies the epilogue. Short chunks summed pairwise also
// keep f32 rounding near that of a blocked reduction (long sequential f32 sums lost precision).

/** Loop iterations one invocation may run (LOOP_BUDGET of dispatch.ts: a quarter of llvmpipe's limit). */
let loopBudget = LOOP_BUDGET;
/** Partials one sum_splits call adds (at most 4096; about 3 loop iterations per 8); more are folded first. */
let SUM_GROUP = 4096;
/** Largest buffer of partial sums; a reduction with more runs in slabs of its output. */
let PARTIAL_BYTES = 64 << 20;

export interface ConvReductionLimits {
  loopBudget: number;
  sumGroup: number;
  partialBytes: number;
}

/**
 * Sets the split-reduction limits (tests: small values take the split, fold and slab paths at
 * small shapes); returns the previous ones. No argument restores the defaults.
 */
export function setConvReductionLimits(l: Partial<ConvReductionLimits> = { loopBudget: LOOP_BUDGET, sumGroup: 4096, partialBytes: 64 << 20 }): ConvReductionLimits {
  const prev = { loopBudget, sumGroup: SUM_GROUP, partialBytes: PARTIAL_BYTES };
  loopBudget = l.loopBudget ?? loopBudget;
  SUM_GROUP = Math.max(2, Math.min(4096, l.sumGroup ?? SUM_GROUP));
  PARTIAL_BYTES = l.partialBytes ?? PARTIAL_BYTES;
  return prev;
}

type Spec = Omit<DispatchSpec, 'workgroups'> & { params: NonNullable<DispatchSpec['params']> };

/** Dispatches `x` x `z` workgroups, z in slices under the per-dimension limit (the kernel adds params.z0). */
function dispatchZ(spec: Spec, x: number, z: number): void {
  const rt = runtime();
  const max = rt.limits.maxComputeWorkgroupsPerDimension;
  const [gx, gy] = rt.grid(x);
  for (let z0 = 0; z0 < z; z0 += max) rt.dispatch({ ...spec, params: { ...spec.params, z0 }, workgroups: [gx, gy, Math.min(max, z - z0)] });
}

/**
 * A split reduction over `units` output units of `unitElems` values each, in slabs whose partials
 * fit in PARTIAL_BYTES (slab sizes a multiple of `align` units): per slab, split(part, u0, n)
 * writes the partials [splits, n * unitElems] of units u0 .. u0+n-1 to `part`, and
 * finish(src, u0, n, count) sums the `count` partials of each value in `src` and stores the result;
 * more than SUM_GROUP partials are first summed in groups (conv_fold), also pairwise.
 */
function splitReduce(
  splits: number,
  units: number,
  unitElems: number,
  align: number,
  context: string,
  split: (part: Tensor, u0: number, n: number) => void,
  finish: (src: Tensor, u0: number, n: number, count: number) => void,
): void {
  const rt = runtime();
  const cap = Math.min(PARTIAL_BYTES, rt.limits.maxStorageBufferBindingSize);
  const per = Math.min(units, Math.max(align, Math.floor(cap / (4 * splits * unitElems * align)) * align));
  const part = Tensor.empty([splits * per * unitElems], `${context} partial sums`);
  for (let u0 = 0; u0 < units; u0 += per) {
    const n = Math.min(per, units - u0);
    split(part, u0, n);
    let src = part;
    let count = splits;
    while (count > SUM_GROUP) {
      const elems = n * unitElems;
      const rows = Math.ceil(count / SUM_GROUP);
      const folded = Tensor.empty([rows * elems], `${context} partial sums`);
      rt.dispatch({
        kernel: 'conv',
        entry: 'conv_fold',
        params: { elems, splits: count, group: SUM_GROUP },
        buffers: { partials: src.buffer, out: folded.buffer },
        workgroups: Math.ceil((rows * elems) / 64),
        context: `${context} [fold partials]`,
      });
      if (src !== part) src.dispose();
      src = folded;
      count = rows;
    }
    finish(src, u0, n, count);
    if (src !== part) src.dispose();
  }
  part.dispose();
}

/** K per split of conv_naive with `mr` rows: the k loop and its row loop per step. */
function naiveChunk(mr: number): number {
  return Math.max(1, Math.floor((loopBudget - (mr + 16)) / (mr + 2)));
}

/** K per split of conv_tiled (a multiple of TK = 16): its loops per 16-deep slice. */
function tiledChunk(tm: number): number {
  const bm = 16 * tm;
  const slice = 1 + ((16 * bm) / 256 + 1) + ((16 * 64) / 256 + 1) + 17 + 16 * (tm + 1);
  return Math.max(1, Math.floor((loopBudget - (6 * tm + 16)) / slice)) * 16;
}

interface EpilogueArgs {
  bias: Tensor | null;
  act: number;
  alpha: number;
  prelu: Tensor | null;
  residual: Tensor | null;
  resFirst: boolean;
  pre: Tensor | null;
}

let phaseSplit = true;

/** Turns the phase decomposition of strided transposed convs off (tests, benchmarks): plain gather. */
export function setConvTransposePhases(on: boolean): void {
  phaseSplit = on;
}

/**
 * Runs one conv-family GEMM; returns out [batch, groups*M, ...outSize] (modes 0/1) or
 * dW [groups*M, cinG*kvol] (mode 2). A strided transposed gather with dilation 1 runs by phases
 * (mode 3), which skips the taps that cannot reach an output.
 */
function launch(L: Launch, ep?: EpilogueArgs): Tensor {
  const { geom, groups, batch, M, cinG } = L;
  const phases = vol(geom.s);
  const mode = L.mode === 1 && phaseSplit && phases > 1 && geom.dil.every((d) => d === 1) ? 3 : L.mode;
  const kvol = vol(geom.k);
  const ivol = vol(geom.inSize);
  const ovol = vol(geom.outSize);
  // For mode 3, N and K of the largest phase.
  const perPhase = (n: number, a: number) => Math.ceil(n / geom.s[a]);
  const N = mode === 2 ? cinG * kvol : mode === 3 ? batch * vol(geom.outSize.map(perPhase)) : batch * ovol;
  const K = mode === 2 ? batch * ovol : mode === 3 ? cinG * vol(geom.k.map(perPhase)) : cinG * kvol;
  const variant = L.variant ?? pickVariant(M, N, K);
  const rt = runtime();
  let parallel = 1;
  if (mode === 2 && variant === 'tiled') {
    // Split the long reduction over batch*space so about 1024 workgroups run (each at least 256
    // deep).
    const tiles = groups * Math.ceil(M / (M <= 16 ? 16 : 64)) * Math.ceil(N / 64);
    parallel = Math.max(1, Math.min(Math.ceil(K / 256), Math.ceil(1024 / tiles)));
  }
  const outShape = mode === 2 ? [groups * M, N] : [batch, groups * M, ...(L.outSpatial ?? geom.outSize)];
  const out = Tensor.empty(outShape, L.context);
  if (out.size === 0) return out;
  if (K === 0) throw new Error(`${L.context}: empty reduction`);
  // Few rows (output channels) get 16-row tiles, so a tile is not mostly padding.
  const tm = M <= 16 ? 1 : 4;
  const mtiles = Math.ceil(M / (16 * tm));
  // Naive rows per invocation: on CPU adapters every load is costly, and the rows of a workgroup
  // share their A reads (measured 2x at 8 rows on llvmpipe); GPUs keep one row per invocation.
  const mr = variant === 'naive' && rt.isCpuAdapter ? (M >= 8 ? 8 : M >= 4 ? 4 : 1) : 1;
  // Split K into chunks one invocation's loop budget covers (and, for parallelism, as above).
  const kChunk = Math.min(Math.ceil(Math.ceil(K / parallel) / 16) * 16, variant === 'tiled' ? tiledChunk(tm) : naiveChunk(mr));
  const splits = Math.max(1, Math.ceil(K / kChunk));
  const nPhases = mode === 3 ? phases : 1;
  const a = L.a;
  const b = L.b;
  const epBuffers: Record<string, GPUBuffer> = {
    bias: (ep?.bias ?? a).buffer,
    prelu_w: (ep?.prelu ?? a).buffer,
    residual: (ep?.residual ?? a).buffer,
    out: out.buffer,
    pre: ep?.pre ? ep.pre.buffer : dummy(),
  };
  const buffers: Record<string, GPUBuffer> = { a_buf: a.buffer, b_buf: b.buffer, ...epBuffers };
  const z = groups * nPhases * splits * (variant === 'tiled' ? mtiles : Math.ceil(M / mr));
  const epOverrides = { MODE: mode, ACT: ep?.act ?? 0, RES_FIRST: ep?.resFirst ? 1 : 0 };
  const spec: Spec = {
    kernel: 'conv',
    entry: variant === 'tiled' ? 'conv_tiled' : 'conv_naive',
    overrides: { ...epOverrides, ...(variant === 'tiled' ? { TM: tm } : { MR: mr }) },
    params: {
      in_size: v4(geom.inSize),
      out_size: v4(geom.outSize),
      ksize: v4(geom.k),
      stride: v4(geom.s),
      pad: v4(geom.p),
      dil: v4(geom.dil),
      groups,
      batch,
      M,
      N,
      K,
      cin_g: cinG,
      kvol,
      ivol,
      ovol,
      phases: nPhases,
      splits,
      k_chunk: kChunk,
      mtiles,
      n0: 0,
      slab_n: N,
      z0: 0,
      a_offset: a.offset,
      b_offset: b.offset,
      bias_offset: ep?.bias ? ep.bias.offset : 0,
      has_bias: ep?.bias ? 1 : 0,
      has_residual: ep?.residual ? 1 : 0,
      prelu_per_channel: ep?.prelu && ep.prelu.size > 1 ? 1 : 0,
      prelu_offset: ep?.prelu ? ep.prelu.offset : 0,
      store_pre: ep?.pre ? 1 : 0,
      alpha: ep?.alpha ?? 1,
    },
    buffers,
    context: `${L.context} [${variant}]`,
  };
  if (splits === 1) {
    dispatchZ(spec, Math.ceil(N / 64), z);
    return out;
  }
  // The partials of a slab of columns [splits, groups, phases, M, slab], then conv_finish.
  splitReduce(
    splits,
    N,
    groups * nPhases * M,
    64,
    L.context,
    (part, n0, n) => dispatchZ({ ...spec, params: { ...spec.params, n0, slab_n: n }, buffers: { ...buffers, out: part.buffer } }, Math.ceil(n / 64), z),
    (src, n0, n, count) =>
      rt.dispatch({
        kernel: 'conv',
        entry: 'conv_finish',
        overrides: epOverrides,
        params: { ...spec.params, n0, slab_n: n, splits: count },
        buffers: { ...epBuffers, partials: src.buffer },
        workgroups: Math.ceil((groups * nPhases * M * n) / 64),
        context: `${L.context} [${variant}, sum of ${splits} partials]`,
      }),
  );
  return out;
}

// ---- the direct kernels (stride 1, dilation 1, one group) ----

/**
 * Whether the direct kernels run this conv: forced by setConvVariant('direct') or a caller, else on
 * CPU adapters, where they measured 10-20x faster than the implicit GEMM (few loads per FMA); GPUs
 * keep the implicit GEMM (not yet measured there). `inputGrad` also needs the leading padding to be
 * at most k-1, so the input gradient's padding k-1-p is not negative.
 */
function useDirect(geom: Geometry, groups: number, variant: ConvVariant | undefined, inputGrad = false): boolean {
  const fits =
    groups === 1 &&
    geom.s.every((v) => v === 1) &&
    geom.dil.every((v) => v === 1) &&
    geom.k[2] <= 16 &&
    geom.k[1] * geom.k[2] <= 64 &&
    (!inputGrad || geom.p.every((p, i) => p <= geom.k[i] - 1));
  if (!fits) return false;
  const choice = variant ?? forcedVariant;
  return choice ? choice === 'direct' : runtime().isCpuAdapter;
}

/** Packs a conv weight [Cout, Cin, ...k] into direct_conv's layout (flip: for the input gradient). */
function packWeight(w: Tensor, flip: boolean, context: string): Tensor {
  const [cout, cin] = w.shape;
  const kvol = w.size / (cout * cin);
  const o4 = Math.ceil((flip ? cin : cout) / 4);
  const n = (flip ? cout : cin) * kvol * o4;
  const packed = Tensor.empty([n * 4], `${context} packed weight`);
  const rt = runtime();
  rt.dispatch({
    kernel: 'conv_direct',
    entry: 'direct_pack_weight',
    overrides: { FLIP: flip ? 1 : 0 },
    params: { cout, cin, kvol, o4, w_offset: w.offset },
    buffers: { w_src: w.buffer, packed: packed.buffer },
    workgroups: rt.grid(Math.ceil(n / 64)),
    context: `${context} [pack weight]`,
  });
  return packed;
}

/**
 * y [batch, cout, ...outSpatial] = the stride-1 conv of dense x [batch, cin, ...] with a packed
 * weight, leading padding geom.p, then the epilogue.
 */
function directConv(x: Tensor, packed: Tensor, geom: Geometry, cin: number, cout: number, outSpatial: readonly number[], context: string, ep?: EpilogueArgs): Tensor {
  const batch = x.shape[0];
  const out = Tensor.empty([batch, cout, ...outSpatial], context);
  if (out.size === 0) return out;
  const rt = runtime();
  const ow = geom.outSize[2];
  // Columns per invocation: 16 measured best on llvmpipe at width 32; narrow outputs take fewer.
  const tn = ow <= 4 ? 4 : ow <= 8 ? 8 : 16;
  const wchunks = Math.ceil(ow / tn);
  const rows = batch * geom.outSize[0] * geom.outSize[1];
  const co4 = Math.ceil(cout / 4);
  // direct_conv's loop iterations per input channel (i, kd, kh, the row load, kw; the TN columns
  // are written out) and outside the channel loop (the stores); the channels are split into
  // chunks that fit.
  const [kd, kh, kw] = geom.k;
  const perChannel = 1 + (kd + 1) + kd * (kh + 1 + kh * (tn + kw + (kw + 1)));
  const ciChunk = Math.max(1, Math.floor((loopBudget - (6 * tn + 16)) / perChannel));
  const splits = Math.ceil(cin / ciChunk);
  const epOverrides = { ACT: ep?.act ?? 0, RES_FIRST: ep?.resFirst ? 1 : 0 };
  const spec: Spec = {
    kernel: 'conv_direct',
    entry: 'direct_conv',
    overrides: { TN: tn, ...epOverrides },
    params: {
      in_size: v4(geom.inSize),
      out_size: v4(geom.outSize),
      ksize: v4(geom.k),
      pad: v4(geom.p),
      batch,
      cin,
      cout,
      co4,
      wchunks,
      ci_chunk: ciChunk,
      splits,
      row0: 0,
      slab_rows: rows,
      z0: 0,
      b_offset: x.offset,
      bias_offset: ep?.bias ? ep.bias.offset : 0,
      has_bias: ep?.bias ? 1 : 0,
      has_residual: ep?.residual ? 1 : 0,
      prelu_per_channel: ep?.prelu && ep.prelu.size > 1 ? 1 : 0,
      prelu_offset: ep?.prelu ? ep.prelu.offset : 0,
      store_pre: ep?.pre ? 1 : 0,
      alpha: ep?.alpha ?? 1,
    },
    buffers: {},
    context: `${context} [direct]`,
  };
  const epBuffers: Record<string, GPUBuffer> = {
    bias: (ep?.bias ?? packed).buffer,
    prelu_w: (ep?.prelu ?? packed).buffer,
    residual: (ep?.residual ?? packed).buffer,
    out: out.buffer,
    pre: ep?.pre ? ep.pre.buffer : dummy(),
  };
  const buffers = { a_buf: packed.buffer, b_buf: x.buffer, ...epBuffers };
  if (splits === 1) {
    dispatchZ({ ...spec, buffers }, Math.ceil((rows * wchunks) / 64), co4);
    return out;
  }
  // The partials of a slab of (b, d, h) rows [splits, rows, cout, W], then direct_finish.
  splitReduce(
    splits,
    rows,
    cout * ow,
    1,
    context,
    (part, r0, n) => dispatchZ({ ...spec, params: { ...spec.params, row0: r0, slab_rows: n }, buffers: { ...buffers, out: part.buffer } }, Math.ceil((n * wchunks) / 64), co4 * splits),
    (src, r0, n, count) =>
      rt.dispatch({
        kernel: 'conv_direct',
        entry: 'direct_finish',
        overrides: epOverrides,
        params: { ...spec.params, row0: r0, slab_rows: n, splits: count },
        buffers: { ...epBuffers, partials: src.buffer },
        workgroups: Math.ceil((n * cout * ow) / 64),
        context: `${context} [direct, sum of ${splits} partials]`,
      }),
  );
  return out;
}

/** dW [cout, cin, ...k] of a stride-1 conv from dense g [batch, cout, ...out] and x [batch, cin, ...in]. */
function directWeightGrad(g: Tensor, x: Tensor, geom: Geometry, wShape: readonly number[], context: string): Tensor {
  const [batch, cout] = g.shape;
  const cin = x.shape[1];
  const rt = runtime();
  const co4 = Math.ceil(cout / 4);
  const units = co4 * cin * geom.k[0];
  const rows = batch * geom.outSize[0] * geom.outSize[1];
  // direct_weight_grad's loop iterations per row of g (r, the 8-column steps, per step the g loads,
  // kh, the row load, kw; the 8 columns are written out) and outside the row loop (the stores).
  const [, kh, kw] = geom.k;
  const steps = Math.ceil(geom.outSize[2] / 8);
  const perRow = 1 + (steps + 1) + steps * (9 + (kh + 1) + kh * (8 + kw + (kw + 1)));
  const maxRows = Math.max(1, Math.floor((loopBudget - (4 * kh * kw + 16)) / perRow));
  // About 4096 invocations in all, each chunk of rows within the budget; each chunk gives one
  // partial dW, summed pairwise by direct_weight_grad_finish.
  const rowsPerChunk = Math.min(maxRows, Math.ceil(rows / Math.max(1, Math.min(rows, Math.ceil(4096 / units)))));
  const chunks = Math.ceil(rows / rowsPerChunk);
  const dw = Tensor.empty([...wShape], context);
  const spec: Spec = {
    kernel: 'conv_direct',
    entry: 'direct_weight_grad',
    params: {
      in_size: v4(geom.inSize),
      out_size: v4(geom.outSize),
      ksize: v4(geom.k),
      pad: v4(geom.p),
      batch,
      cin,
      cout,
      co4,
      rows_per_chunk: rowsPerChunk,
      splits: chunks,
      unit0: 0,
      slab_units: units,
      z0: 0,
      g_offset: g.offset,
      x_offset: x.offset,
    },
    buffers: { g_buf: g.buffer, x_buf: x.buffer, dw_part: dw.buffer },
    context: `${context} [direct]`,
  };
  if (chunks === 1) {
    dispatchZ(spec, Math.ceil(units / 64), 1);
    return dw;
  }
  // The partials of a slab of units (o4, i, kd) [chunks, units, 4, kH*kW], then the pairwise sum.
  splitReduce(
    chunks,
    units,
    4 * kh * kw,
    1,
    context,
    (part, u0, n) => dispatchZ({ ...spec, params: { ...spec.params, unit0: u0, slab_units: n }, buffers: { ...spec.buffers, dw_part: part.buffer } }, Math.ceil(n / 64), chunks),
    (src, u0, n, count) =>
      rt.dispatch({
        kernel: 'conv_direct',
        entry: 'direct_weight_grad_finish',
        params: { ...spec.params, unit0: u0, slab_units: n, splits: count },
        buffers: { partials: src.buffer, out: dw.buffer },
        workgroups: Math.ceil((n * 4 * kh * kw) / 64),
        context: `${context} [direct, sum of ${chunks} partials]`,
      }),
  );
  return dw;
}

// ---- argument normalisation ----

function tuple(v: IntOrTuple | undefined, n: number, dflt: number, what: string, op: string): number[] {
  const t = v === undefined ? new Array<number>(n).fill(dflt) : typeof v === 'number' ? new Array<number>(n).fill(v) : [...v];
  if (t.length !== n || t.some((x) => !Number.isInteger(x))) throw new Error(`${op}: ${what} must be an int or ${n} ints, got ${JSON.stringify(v)}`);
  return t;
}

/** Pads a per-axis list to 3 axes with leading unit values. */
function to3(v: readonly number[], fill: number): V3 {
  const out: number[] = new Array<number>(3 - v.length).fill(fill).concat(v);
  return out as V3;
}

/** Leading and trailing padding per axis. */
function resolvePadding(padding: ConvPadding | undefined, nd: number, k: number[], dil: number[], stride: number[], op: string): [number[], number[]] {
  if (padding === undefined || padding === 'valid') return [new Array(nd).fill(0), new Array(nd).fill(0)];
  if (padding === 'same') {
    if (stride.some((s) => s !== 1)) throw new Error(`${op}: padding='same' needs stride 1 (as in PyTorch), got stride ${shapeStr(stride)}`);
    const total = k.map((kk, i) => dil[i] * (kk - 1));
    const before = total.map((t) => Math.floor(t / 2));
    return [before, total.map((t, i) => t - before[i])];
  }
  if (typeof padding !== 'number' && padding.length && Array.isArray(padding[0])) {
    const pairs = padding as readonly (readonly [number, number])[];
    if (pairs.length !== nd || pairs.some((p) => p.length !== 2)) throw new Error(`${op}: padding pairs must be ${nd} [before, after] pairs, got ${JSON.stringify(padding)}`);
    const before = pairs.map((p) => p[0]);
    const after = pairs.map((p) => p[1]);
    if ([...before, ...after].some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`${op}: padding must be non-negative ints, got ${JSON.stringify(padding)}`);
    return [before, after];
  }
  const p = tuple(padding as IntOrTuple, nd, 0, 'padding', op);
  if (p.some((x) => x < 0)) throw new Error(`${op}: padding must be non-negative, got ${JSON.stringify(padding)}`);
  return [p, p];
}

function checkInputs(op: string, nd: number, x: Tensor, w: Tensor, b: Tensor | null): void {
  if (x.ndim !== nd + 2) throw new Error(`${op}: input must be ${nd + 2}-d [batch, C, ${['D', 'H', 'W'].slice(3 - nd).join(', ')}], got ${shapeStr(x.shape)}`);
  if (w.ndim !== nd + 2) throw new Error(`${op}: weight must be ${nd + 2}-d, got ${shapeStr(w.shape)}`);
  if (b && b.ndim !== 1) throw new Error(`${op}: bias must be 1-d, got ${shapeStr(b.shape)}`);
}

/** A contiguous handle of t without recording a gradient node. */
function dense(t: Tensor): Tensor {
  return noGrad(() => contiguous(t));
}

function epilogueArgs(op: string, ep: ConvEpilogue, outShape: number[], bias: Tensor | null, grad: boolean): EpilogueArgs {
  const act = ep.activation ? ACT[ep.activation] : 0;
  if (act === undefined) throw new Error(`${op}: unknown activation '${ep.activation}'`);
  const C = outShape[1];
  let prelu: Tensor | null = null;
  if (act === ACT.prelu) {
    if (!ep.preluWeight) throw new Error(`${op}: activation 'prelu' needs preluWeight`);
    if (ep.preluWeight.size !== 1 && ep.preluWeight.size !== C) {
      throw new Error(`${op}: preluWeight ${shapeStr(ep.preluWeight.shape)} must have 1 or ${C} elements`);
    }
    prelu = dense(ep.preluWeight);
  }
  let residual: Tensor | null = null;
  if (ep.residual) {
    if (ep.residual.shape.join() !== outShape.join()) {
      throw new Error(`${op}: residual ${shapeStr(ep.residual.shape)} must have the output's shape ${shapeStr(outShape)}`);
    }
    const r = ep.residual;
    // The kernel reads the residual densely from element 0.
    residual = r.isContiguous() && r.offset === 0 ? r.view(r.shape, r.strides) : noGrad(() => elementwise(Unary.copy, [r], {}, `${op} residual`));
  }
  const pre = grad && act !== 0 ? Tensor.empty(outShape, `${op} pre-activation`) : null;
  return { bias, act, alpha: ep.alpha ?? 1, prelu, residual, resFirst: !!ep.residualBeforeActivation, pre };
}

/**
 * The backward of the epilogue: from dy to dq (the gradient of conv + bias), the residual's and
 * the prelu weight's gradients. `pre` is freed by freeEpilogue, in the node's release.
 */
function epilogueBackward(g: Tensor, ep: EpilogueArgs, C: number): { dq: Tensor; dres: Tensor | null; dprelu: Tensor | null } {
  let dq = g;
  let dprelu: Tensor | null = null;
  const q = ep.pre;
  if (q) {
    const nd = q.ndim;
    switch (ep.act) {
      case ACT.relu:
        dq = elementwise(Binary.reluBackward, [q, g], {}, 'conv relu backward');
        break;
      case ACT.gelu:
        dq = elementwise(Binary.geluBackward, [q, g], {}, 'conv gelu backward');
        break;
      case ACT.elu:
        dq = elementwise(Binary.eluBackward, [q, g], { alpha: ep.alpha }, 'conv elu backward');
        break;
      case ACT.prelu: {
        const w = ep.prelu!;
        const wb = w.size === 1 ? reshape(w, []) : reshape(w, [C, ...new Array<number>(nd - 2).fill(1)]);
        dq = elementwise(Ternary.preluBackwardInput, [q, wb, g], {}, 'conv prelu backward');
        const t = elementwise(Ternary.preluBackwardWeight, [q, wb, g], {}, 'conv prelu backward');
        const r = sumToShape(t, wb.shape);
        dprelu = reshape(r, w.shape);
        if (r !== t) t.dispose();
        r.dispose();
        wb.dispose();
        break;
      }
    }
  }
  const dres = ep.residual ? (ep.resFirst ? dq : g) : null;
  return { dq, dres, dprelu };
}

function freeEpilogue(ep: EpilogueArgs): void {
  ep.prelu?.dispose();
  ep.residual?.dispose();
  ep.pre?.dispose();
}

/** Gradient of the bias: dq summed over batch and space. */
function biasGrad(dq: Tensor): Tensor {
  return sum(dq, [0, ...dq.shape.slice(2).map((_, i) => i + 2)]);
}

/** Makes a fresh handle when `t` is `g` itself (a backward rule must not return its input handle). */
function own(t: Tensor, g: Tensor): Tensor {
  return t === g ? g.view(g.shape, g.strides) : t;
}

// ---- conv ----

/**
 * N-d convolution with a fused epilogue; `conv1d/2d/3d` are this with epilogue {}.
 * x [batch, Cin, ...spatial], w [Cout, Cin/groups, ...k], b [Cout] or null.
 */
export function conv(x: Tensor, w: Tensor, b: Tensor | null, options: ConvOptions = {}, epilogue: ConvEpilogue = {}, variant?: ConvVariant): Tensor {
  const nd = x.ndim - 2;
  const op = `conv${nd}d`;
  if (nd < 1 || nd > 3) throw new Error(`conv: input must be 3-, 4- or 5-d, got ${shapeStr(x.shape)}`);
  checkInputs(op, nd, x, w, b);
  const groups = options.groups ?? 1;
  const [batch, Cin, ...inSp] = x.shape;
  const [Cout, CinG, ...k] = w.shape;
  const name = `${op}(${shapeStr(x.shape)}, ${shapeStr(w.shape)})`;
  if (!Number.isInteger(groups) || groups < 1 || Cin % groups || Cout % groups) {
    throw new Error(`${name}: groups=${groups} must divide Cin=${Cin} and Cout=${Cout}`);
  }
  if (CinG !== Cin / groups) throw new Error(`${name}: weight expects ${CinG * groups} input channels (${CinG} per group, groups=${groups}), input has ${Cin}`);
  if (b && b.shape[0] !== Cout) throw new Error(`${name}: bias ${shapeStr(b.shape)} must be [${Cout}]`);
  const stride = tuple(options.stride, nd, 1, 'stride', name);
  const dil = tuple(options.dilation, nd, 1, 'dilation', name);
  if ([...stride, ...dil].some((v) => v < 1)) throw new Error(`${name}: stride and dilation must be >= 1`);
  const [pb, pa] = resolvePadding(options.padding, nd, k, dil, stride, name);
  const outSp = inSp.map((n, i) => Math.floor((n + pb[i] + pa[i] - dil[i] * (k[i] - 1) - 1) / stride[i]) + 1);
  if (outSp.some((n) => n < 1)) throw new Error(`${name}: the kernel (dilated) is larger than the padded input; output would be ${shapeStr(outSp)}`);
  const outShape = [batch, Cout, ...outSp];
  const geom: Geometry = { inSize: to3(inSp, 1), outSize: to3(outSp, 1), k: to3(k, 1), s: to3(stride, 1), p: to3(pb, 0), dil: to3(dil, 1) };
  const grad = needsGrad(x, w, b, epilogue.preluWeight, epilogue.residual);
  const xc = dense(x);
  const wc = dense(w);
  const bc = b ? dense(b) : null;
  const ep = epilogueArgs(name, epilogue, outShape, bc, grad);
  const gemmVariant = variant === 'direct' ? undefined : variant;
  let out: Tensor;
  if (useDirect(geom, groups, variant)) {
    const packed = packWeight(wc, false, name);
    out = directConv(xc, packed, geom, Cin, Cout, outSp, name, ep);
    packed.dispose();
  } else {
    out = launch({ mode: 0, geom, groups, batch, M: Cout / groups, cinG: CinG, a: wc, b: xc, context: name, variant: gemmVariant, outSpatial: outSp }, ep);
  }
  const inputs = [x, w, b, epilogue.preluWeight ?? null, epilogue.residual ?? null];
  // The dense operands and epilogue tensors, freed once the backward has used them.
  const release = () => {
    xc.dispose();
    wc.dispose();
    bc?.dispose();
    freeEpilogue(ep);
  };
  if (!grad) {
    release();
    return out;
  }
  const bwdGeom: Geometry = { ...geom, inSize: geom.outSize, outSize: geom.inSize };
  return record(op, out, inputs, (g) => {
    const gc = dense(g);
    const { dq, dres, dprelu } = epilogueBackward(gc, ep, Cout);
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (x.requiresGrad) {
      const ctx = `${name} backward (input)`;
      if (useDirect(geom, groups, variant, true)) {
        // the stride-1 conv of dq with the flipped, transposed weight and leading padding k-1-p
        const packed = packWeight(wc, true, ctx);
        const flipGeom: Geometry = { ...bwdGeom, p: geom.k.map((kk, i) => kk - 1 - geom.p[i]) as V3 };
        dx = directConv(dq, packed, flipGeom, Cout, Cin, inSp, ctx);
        packed.dispose();
      } else {
        // transposed conv of dq: "x" = dq [batch, Cout, out], weight read as [Cout, Cin/g, k]
        dx = launch({ mode: 1, geom: bwdGeom, groups, batch, M: CinG, cinG: Cout / groups, a: wc, b: dq, context: ctx, variant: gemmVariant, outSpatial: inSp });
      }
    }
    if (w.requiresGrad) {
      const ctx = `${name} backward (weight)`;
      if (useDirect(geom, groups, variant)) {
        dw = directWeightGrad(dq, xc, geom, w.shape, ctx);
      } else {
        const flat = launch({ mode: 2, geom, groups, batch, M: Cout / groups, cinG: CinG, a: dq, b: xc, context: ctx, variant: gemmVariant });
        dw = reshape(flat, w.shape);
        flat.dispose();
      }
    }
    const db = b?.requiresGrad ? biasGrad(dq) : null;
    const res = dres ? own(dres, g) : null;
    if (dq !== gc && dq !== dres) dq.dispose();
    if (gc !== dres) gc.dispose();
    return [dx, dw, db, dprelu, res];
  }, [xc, wc, bc, ep.prelu, ep.residual, ep.pre]);
}

export function conv1d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvOptions = {}): Tensor {
  if (x.ndim !== 3) throw new Error(`conv1d: input must be 3-d [batch, C, L], got ${shapeStr(x.shape)}`);
  return conv(x, w, b, options);
}

export function conv2d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvOptions = {}): Tensor {
  if (x.ndim !== 4) throw new Error(`conv2d: input must be 4-d [batch, C, H, W], got ${shapeStr(x.shape)}`);
  return conv(x, w, b, options);
}

export function conv3d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvOptions = {}): Tensor {
  if (x.ndim !== 5) throw new Error(`conv3d: input must be 5-d [batch, C, D, H, W], got ${shapeStr(x.shape)}`);
  return conv(x, w, b, options);
}

// ---- transposed conv ----

/**
 * N-d transposed convolution (gather form) with a fused epilogue.
 * x [batch, Cin, ...spatial], w [Cin, Cout/groups, ...k], b [Cout] or null.
 */
export function convTranspose(
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  options: ConvTransposeOptions = {},
  epilogue: ConvEpilogue = {},
  variant?: ConvVariant,
): Tensor {
  const nd = x.ndim - 2;
  const op = `convTranspose${nd}d`;
  if (nd < 1 || nd > 3) throw new Error(`convTranspose: input must be 3-, 4- or 5-d, got ${shapeStr(x.shape)}`);
  checkInputs(op, nd, x, w, b);
  const groups = options.groups ?? 1;
  const [batch, Cin, ...inSp] = x.shape;
  const [wIn, CoutG, ...k] = w.shape;
  const name = `${op}(${shapeStr(x.shape)}, ${shapeStr(w.shape)})`;
  if (!Number.isInteger(groups) || groups < 1 || Cin % groups) throw new Error(`${name}: groups=${groups} must divide Cin=${Cin}`);
  if (wIn !== Cin) throw new Error(`${name}: weight [Cin, Cout/groups, ...k] expects ${wIn} input channels, input has ${Cin}`);
  const Cout = CoutG * groups;
  if (b && b.shape[0] !== Cout) throw new Error(`${name}: bias ${shapeStr(b.shape)} must be [${Cout}]`);
  const stride = tuple(options.stride, nd, 1, 'stride', name);
  const pad = tuple(options.padding, nd, 0, 'padding', name);
  const outPad = tuple(options.outputPadding, nd, 0, 'outputPadding', name);
  const dil = tuple(options.dilation, nd, 1, 'dilation', name);
  if ([...stride, ...dil].some((v) => v < 1) || pad.some((v) => v < 0)) throw new Error(`${name}: stride/dilation must be >= 1 and padding >= 0`);
  if (outPad.some((v, i) => v < 0 || (v >= stride[i] && v >= dil[i]))) {
    throw new Error(`${name}: outputPadding ${shapeStr(outPad)} must be smaller than stride or dilation`);
  }
  const outSp = inSp.map((n, i) => (n - 1) * stride[i] - 2 * pad[i] + dil[i] * (k[i] - 1) + outPad[i] + 1);
  if (outSp.some((n) => n < 1)) throw new Error(`${name}: output size ${shapeStr(outSp)} is empty`);
  const outShape = [batch, Cout, ...outSp];
  const geom: Geometry = { inSize: to3(inSp, 1), outSize: to3(outSp, 1), k: to3(k, 1), s: to3(stride, 1), p: to3(pad, 0), dil: to3(dil, 1) };
  const grad = needsGrad(x, w, b, epilogue.preluWeight, epilogue.residual);
  const xc = dense(x);
  const wc = dense(w);
  const bc = b ? dense(b) : null;
  const ep = epilogueArgs(name, epilogue, outShape, bc, grad);
  const CinG = Cin / groups;
  const gemmVariant = variant === 'direct' ? undefined : variant;
  const out = launch({ mode: 1, geom, groups, batch, M: CoutG, cinG: CinG, a: wc, b: xc, context: name, variant: gemmVariant, outSpatial: outSp }, ep);
  const inputs = [x, w, b, epilogue.preluWeight ?? null, epilogue.residual ?? null];
  // The dense operands and epilogue tensors, freed once the backward has used them.
  const release = () => {
    xc.dispose();
    wc.dispose();
    bc?.dispose();
    freeEpilogue(ep);
  };
  if (!grad) {
    release();
    return out;
  }
  // The conv that maps dY (spatial outSp) back to x's spatial size.
  const bwdGeom: Geometry = { ...geom, inSize: geom.outSize, outSize: geom.inSize };
  return record(op, out, inputs, (g) => {
    const gc = dense(g);
    const { dq, dres, dprelu } = epilogueBackward(gc, ep, Cout);
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (x.requiresGrad) {
      dx = launch({ mode: 0, geom: bwdGeom, groups, batch, M: CinG, cinG: CoutG, a: wc, b: dq, context: `${name} backward (input)`, outSpatial: inSp });
    }
    if (w.requiresGrad) {
      const flat = launch({ mode: 2, geom: bwdGeom, groups, batch, M: CinG, cinG: CoutG, a: xc, b: dq, context: `${name} backward (weight)` });
      dw = reshape(flat, w.shape);
      flat.dispose();
    }
    const db = b?.requiresGrad ? biasGrad(dq) : null;
    const res = dres ? own(dres, g) : null;
    if (dq !== gc && dq !== dres) dq.dispose();
    if (gc !== dres) gc.dispose();
    return [dx, dw, db, dprelu, res];
  }, [xc, wc, bc, ep.prelu, ep.residual, ep.pre]);
}

export function convTranspose1d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvTransposeOptions = {}): Tensor {
  if (x.ndim !== 3) throw new Error(`convTranspose1d: input must be 3-d [batch, C, L], got ${shapeStr(x.shape)}`);
  return convTranspose(x, w, b, options);
}

export function convTranspose2d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvTransposeOptions = {}): Tensor {
  if (x.ndim !== 4) throw new Error(`convTranspose2d: input must be 4-d [batch, C, H, W], got ${shapeStr(x.shape)}`);
  return convTranspose(x, w, b, options);
}

export function convTranspose3d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvTransposeOptions = {}): Tensor {
  if (x.ndim !== 5) throw new Error(`convTranspose3d: input must be 5-d [batch, C, D, H, W], got ${shapeStr(x.shape)}`);
  return convTranspose(x, w, b, options);
}
