// The implicit-GEMM launcher of the conv family (shaders/conv.wgsl): every conv, transposed conv
// and conv gradient as one GEMM per group, C[M, N] = A[M, K] * B[K, N], with the gathered operand's
// rows read through the conv geometry instead of materialised (im2col without the copy).
//   mode 0 (conv):            A = W [M = Cout/g, K = Cin/g * kvol], B = x gathered, N = batch * out
//   mode 1 (transposed conv): the gather form, x[b, ci, (j + p - k*dil)/s] where the division is exact
//   mode 3 (mode 1 by phases): a strided, undilated transposed conv split into stride^3 phases, each
//                             a dense conv over the taps that reach it (skips the rest)
//   mode 2 (weight gradient): C = dW [M, N = Cin/g * kvol], K = batch * out, A = dY, B = x gathered
// Variants: 'naive' (one output, or MR rows on CPU adapters, per invocation; the reduction in a
// loop) and 'tiled' (workgroup tiles in workgroup memory). K is split into chunks within the loop
// budget (conv-split.ts), and for the weight gradient also for parallelism; the chunks' partials
// are summed pairwise by conv_finish, which applies the epilogue.
import { runtime } from '../gpu/runtime.js';
import { Tensor } from '../tensor.js';
import { dispatchZ, convLoopBudget, splitReduce, type Spec } from './conv-split.js';
import { chunks, unitsPerChunk } from './loop-budget.js';
import { epilogueBuffers, epilogueOverrides, epilogueParams, type EpilogueArgs } from './conv-epilogue.js';
import { vol, v4, type Geometry } from './conv-geometry.js';

export type GemmVariant = 'naive' | 'tiled';

export interface Launch {
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
  /** the output's spatial dims as the caller sees them (1, 2 or 3 of them; modes 0 and 1) */
  outSpatial?: readonly number[];
}

let phaseSplit = true;

/** Turns the phase decomposition of strided transposed convs off (tests, benchmarks): plain gather. */
export function setConvTransposePhases(on: boolean): void {
  phaseSplit = on;
}

/** The GEMM a launch runs: its mode (1 becomes 3 when it runs by phases) and M, N, K (for mode 3, those of the largest phase). */
export function gemmShape(L: Launch): { mode: 0 | 1 | 2 | 3; M: number; N: number; K: number } {
  const { geom, batch, M, cinG } = L;
  const phases = vol(geom.s);
  const mode = L.mode === 1 && phaseSplit && phases > 1 && geom.dil.every((d) => d === 1) ? 3 : L.mode;
  const kvol = vol(geom.k);
  const ovol = vol(geom.outSize);
  const perPhase = (n: number, a: number) => Math.ceil(n / geom.s[a]);
  const N = mode === 2 ? cinG * kvol : mode === 3 ? batch * vol(geom.outSize.map(perPhase)) : batch * ovol;
  const K = mode === 2 ? batch * ovol : mode === 3 ? cinG * vol(geom.k.map(perPhase)) : cinG * kvol;
  return { mode, M, N, K };
}

/** K per split of conv_naive with `mr` rows: the k loop and its row loop per step. */
function naiveChunk(mr: number): number {
  return Math.max(1, Math.floor((convLoopBudget() - (mr + 16)) / (mr + 2)));
}

/** K per split of conv_tiled (a multiple of TK = 16): the tile core's loop passes per 16-deep slice (_gemm_tile.wgsl). */
function tiledChunk(tm: number): number {
  const bm = 16 * tm;
  const slice = 1 + ((16 * bm) / 256 + 1) + ((16 * 64) / 256 + 1) + 17 + 16 * (tm + 1);
  return Math.max(1, Math.floor((convLoopBudget() - (6 * tm + 16)) / slice)) * 16;
}

/**
 * Runs one conv-family GEMM; returns out [batch, groups*M, ...outSize] (modes 0/1) or
 * dW [groups*M, cinG*kvol] (mode 2). A strided transposed gather with dilation 1 runs by phases
 * (mode 3), which skips the taps that cannot reach an output.
 */
export function launch(L: Launch, variant: GemmVariant, ep?: EpilogueArgs): Tensor {
  const { geom, groups, batch, M, cinG } = L;
  const { mode, N, K } = gemmShape(L);
  const phases = vol(geom.s);
  const kvol = vol(geom.k);
  const ivol = vol(geom.inSize);
  const ovol = vol(geom.outSize);
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
  const epBuffers = epilogueBuffers(ep, out);
  const buffers = { a_buf: a.buffer, b_buf: b.buffer, ...epBuffers };
  const z = groups * nPhases * splits * (variant === 'tiled' ? mtiles : Math.ceil(M / mr));
  const epOverrides = { MODE: mode, ...epilogueOverrides(ep) };
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
      ...epilogueParams(ep),
    },
    buffers,
    context: `${L.context} [${variant}]`,
  };
  // Multiply-adds per output column (all rows, phases and K chunks): over the dispatch work
  // bound, the columns run in slabs (multiples of 64) and z (groups, phases, K chunks, row
  // blocks) in slices, each submitted on its own (loop-budget.ts's DISPATCH_WORK).
  const colWork = groups * nPhases * M * K;
  if (splits === 1) {
    const per = unitsPerChunk(N, colWork, 64);
    chunks(N, per, (n0, n) => dispatchZ({ ...spec, params: { ...spec.params, n0, slab_n: n } }, Math.ceil(n / 64), z, n * colWork));
    return out;
  }
  // The partials of a slab of columns [splits, groups, phases, M, slab], then conv_finish.
  splitReduce(
    splits,
    N,
    groups * nPhases * M,
    64,
    L.context,
    (part, n0, n) => dispatchZ({ ...spec, params: { ...spec.params, n0, slab_n: n }, buffers: { ...buffers, out: part.buffer } }, Math.ceil(n / 64), z, n * colWork),
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
    colWork,
  );
  return out;
}