// The implicit-GEMM launcher of the conv family (shaders/conv.wgsl): every conv, transposed conv
// and conv gradient as one GEMM per group, C[M, N] = A[M, K] * B[K, N], with the gathered operand's
// rows read through the conv geometry instead of materialised (im2col without the copy).
//   mode 0 (conv):            A = W [M = Cout/g, K = Cin/g * kvol], B = x gathered, N = batch * out
//   mode 1 (transposed conv): the gather form, x[b, ci, (j + p - k*dil)/s] where the division is exact
//   mode 3 (mode 1 by phases): a strided, undilated transposed conv split into stride^3 phases, each
//                             a dense conv over the taps that reach it (skips the rest)
//   mode 2 (weight gradient): C = dW [M, N = Cin/g * kvol], K = batch * out, A = dY, B = x gathered
// Variants: 'naive' (one output, or MR rows on CPU adapters, per invocation; the reduction in a
// loop) and the tiled ones (workgroup tiles in workgroup memory, the GEMM tile core's override
// knobs TK and TM per variant: CONV_TILES). K is split into chunks within the loop
// budget (conv-split.ts), and for the weight gradient also for parallelism; the chunks' partials
// are summed pairwise by conv_finish, which applies the epilogue.
import { runtime } from '../gpu/runtime.js';
import { Tensor } from '../tensor.js';
import { dispatchZ, convLoopBudget, splitReduce, type Spec } from './conv-split.js';
import { chunks, unitsPerChunk } from './loop-budget.js';
import { tileSlicePasses } from './matmul.js';
import { epilogueBuffers, epilogueOverrides, epilogueParams, type EpilogueArgs } from './conv-epilogue.js';
import { vol, v4, type Geometry } from './conv-geometry.js';

export type TiledVariant = 'tiled' | 'tiled-k32' | 'tiled-m16';
export type GemmVariant = 'naive' | TiledVariant;

/**
 * conv_tiled's knobs per tiled variant (override constants of shaders/conv.wgsl and the tile
 * core): TK, the depth of a staged K slice, and TM, rows per invocation (16*TM-row tiles, 64
 * columns); TM 'auto' is 1 for at most 16 rows (a 64-row tile of few channels is mostly padding),
 * else 4. TK 8 and TM 2 are not registered: they never won for matmul's same core (matmul.ts).
 */
export const CONV_TILES: Readonly<Record<TiledVariant, { TK: 16 | 32; TM: 1 | 'auto' }>> = {
  tiled: { TK: 16, TM: 'auto' },
  'tiled-k32': { TK: 32, TM: 'auto' },
  'tiled-m16': { TK: 16, TM: 1 },
};

/** The TK and TM a tiled variant runs with for M rows per group. */
export function convTile(variant: TiledVariant, M: number): { TK: number; TM: number } {
  const t = CONV_TILES[variant];
  return { TK: t.TK, TM: t.TM === 'auto' ? (M <= 16 ? 1 : 4) : t.TM };
}

/**
 * Workgroup memory conv_tiled declares at these knobs: tile_a (BM*TK f32), tile_b (TK*64 f32) and
 * the slice's taps (TK Taps of 32 bytes: two u32 and a 16-byte-aligned vec3<i32>).
 */
export function convTileBytes({ TK, TM }: { TK: number; TM: number }): number {
  return 4 * (16 * TM * TK + TK * 64) + 32 * TK;
}

/** Whether a tiled variant fits the device's workgroup memory for M rows (TK 32 at 64 rows needs 17 KiB; WebGPU guarantees 16). */
export function convTileFits(variant: TiledVariant, M: number): boolean {
  return convTileBytes(convTile(variant, M)) <= runtime().limits.maxComputeWorkgroupStorageSize;
}

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

/**
 * K per split of conv_tiled (a multiple of TK): whole TK-deep slices of the tile core's loop passes
 * (matmul.ts's tileSlicePasses), plus conv_tiled's own 6*TM + 16 around them.
 */
export function tiledChunk(tile: { TK: number; TM: number }): number {
  return Math.max(1, Math.floor((convLoopBudget() - (6 * tile.TM + 16)) / tileSlicePasses(tile))) * tile.TK;
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
  const tile = variant === 'naive' ? null : convTile(variant, M);
  if (tile && !convTileFits(variant as TiledVariant, M)) {
    throw new Error(`${L.context}: conv variant '${variant}' (TK ${tile.TK}, TM ${tile.TM}) needs ${convTileBytes(tile)} bytes of workgroup memory, the device has ${rt.limits.maxComputeWorkgroupStorageSize}`);
  }
  let parallel = 1;
  if (mode === 2 && tile) {
    // Split the long reduction over batch*space so about 1024 workgroups run (each at least 256
    // deep).
    const tiles = groups * Math.ceil(M / (16 * tile.TM)) * Math.ceil(N / 64);
    parallel = Math.max(1, Math.min(Math.ceil(K / 256), Math.ceil(1024 / tiles)));
  }
  const outShape = mode === 2 ? [groups * M, N] : [batch, groups * M, ...(L.outSpatial ?? geom.outSize)];
  const out = Tensor.empty(outShape, L.context);
  if (out.size === 0) return out;
  if (K === 0) throw new Error(`${L.context}: empty reduction`);
  const mtiles = tile ? Math.ceil(M / (16 * tile.TM)) : 0;
  // Naive rows per invocation: on CPU adapters every load is costly, and the rows of a workgroup
  // share their A reads (measured 2x at 8 rows on llvmpipe); GPUs keep one row per invocation.
  const mr = variant === 'naive' && rt.isCpuAdapter ? (M >= 8 ? 8 : M >= 4 ? 4 : 1) : 1;
  // Split K into chunks one invocation's loop budget covers (and, for parallelism, as above).
  const step = tile?.TK ?? 16;
  const kChunk = Math.min(Math.ceil(Math.ceil(K / parallel) / step) * step, tile ? tiledChunk(tile) : naiveChunk(mr));
  const splits = Math.max(1, Math.ceil(K / kChunk));
  const nPhases = mode === 3 ? phases : 1;
  const a = L.a;
  const b = L.b;
  const epBuffers = epilogueBuffers(ep, out);
  const buffers = { a_buf: a.buffer, b_buf: b.buffer, ...epBuffers };
  const z = groups * nPhases * splits * (tile ? mtiles : Math.ceil(M / mr));
  const epOverrides = { MODE: mode, ...epilogueOverrides(ep) };
  const spec: Spec = {
    kernel: 'conv',
    entry: tile ? 'conv_tiled' : 'conv_naive',
    overrides: { ...epOverrides, ...(tile ?? { MR: mr }) },
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