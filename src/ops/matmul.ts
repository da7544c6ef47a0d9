// matmul (torch.matmul semantics: 1-d operands, batched, broadcast batch dims) and linear
// (x @ W^T + b with the bias fused into the kernel's epilogue). Transposed operands are stride
// swaps, never copies. Backward: dA = dC @ B^T, dB = A^T @ dC, summed over broadcast batch dims;
// db = sum of dC over all but the last dim.
import { noGrad, record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { scope } from '../scope.js';
import { registerKernelFamily } from '../gpu/variants.js';
import { gemmClass } from '../gpu/tune-classes.js';
import { Tensor, numel, shapeStr } from '../tensor.js';
import { broadcastShapes, dims8 } from './broadcast.js';
import { LOOP_BUDGET } from './loop-budget.js';
import { contiguous, expand, reshape, transpose, unsqueeze, squeeze } from './shape.js';
import { sum } from './reduce.js';

/** The kernels: matmul.wgsl's entry points (the tiled ones differ in their tile knobs). */
export type MatmulKernel = 'naive' | 'blocked' | 'tiled';
export type MatmulVariant = MatmulKernel | 'tiled-m16' | 'tiled-k32';

/** k per launch of naive and blocked: 8192 loop passes per invocation, under LOOP_BUDGET. */
const K_SLICE = LOOP_BUDGET / 2;

/** matmul_tiled's tile knobs (override constants of shaders/matmul.wgsl): slice depth TK and rows per invocation TM. */
export type TileKnobs = {
  TK: 8 | 16 | 32;
  TM: 1 | 2 | 4;
};

/**
 * The tiled variants: 16 x 16 invocations, 64 columns, 16*TM rows, TK-deep slices staged per
 * barrier pair. (TK 8 and TM 2 were timed too, on llvmpipe and SwiftShader at 128^3 to 1024^3, and
 * never won; each variant is a pipeline the tests compile, so they are not registered.)
 */
const TILES: Record<string, Readonly<TileKnobs>> = {
  tiled: { TK: 16, TM: 4 },
  'tiled-m16': { TK: 16, TM: 1 },
  'tiled-k32': { TK: 32, TM: 4 },
};

/**
 * Loop passes of the tile core (shaders/_gemm_tile.wgsl, shared with conv_tiled) per TK-deep
 * slice: 1 + (TK*BM/256 + 1) + (TK*64/256 + 1) + (TK + 1) + TK*(TM + 1) (108 at TK 16, TM 4).
 */
export function tileSlicePasses({ TK, TM }: { TK: number; TM: number }): number {
  return 1 + (Math.ceil((TK * 16 * TM) / 256) + 1) + (Math.ceil((TK * 64) / 256) + 1) + (TK + 1) + TK * (TM + 1);
}

/** k per launch of a tiled variant: whole slices (tileSlicePasses), and matmul_tiled about 64 outside them, within LOOP_BUDGET. */
export function tiledKSlice(knobs: TileKnobs): number {
  return Math.floor((LOOP_BUDGET - 64) / tileSlicePasses(knobs)) * knobs.TK;
}

export interface MatmulProblem {
  M: number;
  N: number;
  K: number;
}

const tiledVariant = (name: string, what: string) => ({
  name,
  // (its override constants are matmulKernel's: from TILES, as for a variant named by the caller)
  description: `${what} (${16 * TILES[name].TM}x64 tiles, ${TILES[name].TK}-deep slices)`,
});

export const matmulKernels = registerKernelFamily<MatmulProblem>({
  family: 'matmul',
  variants: [
    { name: 'naive', description: 'one invocation per output, 16x16 workgroups (small problems, and the reference)' },
    { name: 'blocked', description: 'register-blocked 4x4 outputs per invocation, no barriers (CPU adapters)' },
    tiledVariant('tiled', 'workgroup-shared tiles with barriers (GPUs)'),
    tiledVariant('tiled-m16', 'tiled, 1 row per invocation: few rows (a 64-row tile would be mostly padding)'),
    tiledVariant('tiled-k32', 'tiled, twice the slice depth: half the barriers per FMA (adapters where barriers cost)'),
  ],
  // CPU adapters run workgroup barriers slowly and have caches: register blocking wins there.
  choose: ({ M, N, K }, adapter) => (M * N * K < 32 * 32 * 32 || M < 4 || N < 4 ? 'naive' : adapter === 'cpu' ? 'blocked' : 'tiled'),
  shapeClass: gemmClass,
});

/** The GPU product of two >=2-d operands with equal-or-broadcast batch dims, plus optional bias [N]. */
export function matmulKernel(a: Tensor, b: Tensor, bias: Tensor | null, variant?: MatmulVariant): Tensor {
  const M = a.shape[a.ndim - 2];
  const K = a.shape[a.ndim - 1];
  const N = b.shape[b.ndim - 1];
  if (b.shape[b.ndim - 2] !== K) throw new Error(`matmul: ${shapeStr(a.shape)} @ ${shapeStr(b.shape)}: inner dims ${K} and ${b.shape[b.ndim - 2]} differ`);
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (batchShape.length > 8) throw new Error('matmul: more than 8 batch dims');
  const batchStrides = (t: Tensor) => {
    const nb = t.ndim - 2;
    return batchShape.map((n, j) => {
      const i = j - (batchShape.length - nb);
      return i < 0 || t.shape[i] === 1 ? 0 : t.strides[i];
    });
  };
  const batch = numel(batchShape);
  const out = Tensor.empty([...batchShape, M, N], 'matmul');
  if (out.size === 0) return out;
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== N || (N > 1 && bias.strides[0] !== 1))) {
    throw new Error(`matmul: bias ${shapeStr(bias.shape)} must be a contiguous [${N}]`);
  }
  const v = variant ?? (matmulKernels.pick({ M, N, K }).variant.name as MatmulVariant);
  const tile = TILES[v];
  const kernel: MatmulKernel = tile ? 'tiled' : (v as MatmulKernel);
  const rt = runtime();
  // K in slices, each launch continuing the sums in `out` (shaders/matmul.wgsl: llvmpipe's loop limit).
  const kSlice = tile ? tiledKSlice(tile) : K_SLICE;
  for (let k0 = 0; k0 < K || k0 === 0; k0 += kSlice) rt.dispatch({
    kernel: 'matmul',
    entry: `matmul_${kernel}`,
    overrides: tile ?? {},
    params: {
      batch_shape: dims8(batchShape),
      a_batch_strides: dims8(batchStrides(a)),
      b_batch_strides: dims8(batchStrides(b)),
      batch_ndim: batchShape.length,
      batch,
      M,
      N,
      K,
      a_offset: a.offset,
      a_stride_m: a.strides[a.ndim - 2],
      a_stride_k: a.strides[a.ndim - 1],
      b_offset: b.offset,
      b_stride_k: b.strides[b.ndim - 2],
      b_stride_n: b.strides[b.ndim - 1],
      bias_offset: bias ? bias.offset : 0,
      has_bias: bias ? 1 : 0,
      k_begin: k0,
      k_end: Math.min(K, k0 + kSlice),
    },
    buffers: { a: a.storage.buffer, b: b.storage.buffer, bias: bias?.storage.buffer ?? null, out: out.storage.buffer },
    workgroups:
      tile ? [Math.ceil(N / 64), Math.ceil(M / (16 * tile.TM)), batch]
      : kernel === 'blocked' ? [Math.ceil(N / 64), Math.ceil(M / 64), batch]
      : [Math.ceil(N / 16), Math.ceil(M / 16), batch],
    context: `matmul[${v}](${shapeStr(a.shape)}, ${shapeStr(b.shape)}${bias ? `, bias ${shapeStr(bias.shape)}` : ''})`,
  });
  return out;
}

/** torch.matmul. Batch dims are expanded to their broadcast shape first (views), so expand's backward sums them. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) throw new Error('matmul: both operands need at least 1 dim');
  return scope(() => {
    if (a.ndim === 1 || b.ndim === 1) {
      // Promote vectors to matrices, multiply, then drop the added dim (as torch.matmul).
      const r = matmul(a.ndim === 1 ? unsqueeze(a, 0) : a, b.ndim === 1 ? unsqueeze(b, -1) : b);
      const r1 = a.ndim === 1 ? squeeze(r, -2) : r;
      return b.ndim === 1 ? squeeze(r1, -1) : r1;
    }
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const ae = expand(a, [...batch, ...a.shape.slice(-2)]);
    const be = expand(b, [...batch, ...b.shape.slice(-2)]);
    const out = matmulKernel(ae, be, null);
    // dA = dC @ B^T, dB = A^T @ dC
    return record('matmul', out, [ae, be], (g) => [
      ae.requiresGrad ? matmulKernel(g, transpose(be, -1, -2), null) : null,
      be.requiresGrad ? matmulKernel(transpose(ae, -1, -2), g, null) : null,
    ]);
  });
}

/** y = x @ weight^T + bias, weight [out, in] as torch.nn.Linear; x [..., in]. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  if (weight.ndim !== 2) throw new Error(`linear: weight must be [out, in], got ${shapeStr(weight.shape)}`);
  const [outF, inF] = weight.shape;
  if (x.shape[x.ndim - 1] !== inF) throw new Error(`linear: input ${shapeStr(x.shape)} has ${x.shape[x.ndim - 1]} features, weight expects ${inF}`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) throw new Error(`linear: bias ${shapeStr(bias.shape)} must be [${outF}]`);
  const lead = x.shape.slice(0, -1);
  return scope(() => {
    // x as rows [n, in] (recorded, so its backward reshapes the gradient back), weight^T as a stride swap
    const x2 = reshape(x, [numel(lead), inF]);
    const bc = bias && bias.strides[0] !== 1 ? noGrad(() => contiguous(bias)) : bias;
    const y2 = matmulKernel(x2, noGrad(() => transpose(weight, 0, 1)), bc);
    // dx = dy @ W, dW = dy^T @ x, db = sum of dy over rows
    const y = record('linear', y2, [x2, weight, bias], (g) => [
      x2.requiresGrad ? matmulKernel(g, weight, null) : null,
      weight.requiresGrad ? matmulKernel(transpose(g, 0, 1), x2, null) : null,
      bias?.requiresGrad ? sum(g, 0) : null,
    ]);
    return reshape(y, [...lead, outF]);
  });
}
