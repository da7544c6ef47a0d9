// Launch helpers shared by the op files: broadcasting, uniform arrays of shapes/strides, and the
// elementwise kernel family (unary/binary/ternary over strided, broadcast operands).
import { runtime } from '../gpu/runtime.js';
import { Tensor, MAX_DIMS, shapeStr } from '../tensor.js';

export type Scalar = number;
export type TensorOrScalar = Tensor | number;

/**
 * Loop passes one invocation may run in one launch, counting every pass of every loop it runs
 * (inner loops in full, and the per-dim loop of strided_offset for each element it indexes).
 * Mesa's llvmpipe (gallivm; Mesa 22.3.6 through Dawn's OpenGL backend) keeps one counter of 65535
 * loop passes per batch of 8 invocations, shared by all the loops of the shader, and silently
 * leaves every loop once it runs out (later loops then run one pass each). Kernels whose loops
 * grow with the problem split the work (more launches, or chunks merged in a second pass) so that
 * no invocation runs more than this, a quarter of that limit.
 */
export const LOOP_BUDGET = 16384;

let tileBudget = LOOP_BUDGET;

/** Tests: a smaller budget for loopTiles, so loop nests split into many launches at small sizes; null restores it. */
export function setTileBudget(passes: number | null): void {
  tileBudget = passes ?? LOOP_BUDGET;
}

/**
 * Splits nested loops of the given trip counts (outermost first) into tiles whose passes, counted
 * as llvmpipe counts them (trips + 1 per loop entered), stay within LOOP_BUDGET less `reserve` (the
 * passes of the kernel's other loops). Returns the tile length per loop; the launches walk the
 * tiles in row-major order, so a split inner loop always comes with single-trip outer tiles and
 * the iteration order of the whole nest is kept.
 */
export function loopTiles(trips: readonly number[], reserve = 0): number[] {
  const budget = Math.max(2, tileBudget - reserve);
  const tiles = new Array<number>(trips.length);
  let inner = 0; // passes of one trip of the loop at depth d (the loops inside it)
  for (let d = trips.length - 1; d >= 0; d--) {
    const per = inner + 1;
    tiles[d] = Math.max(1, Math.min(trips[d], Math.floor((budget - 1) / per)));
    inner = tiles[d] * per + 1;
  }
  // Keep row-major order: the loops outside the innermost split one take one trip per tile.
  let split = -1;
  tiles.forEach((t, d) => {
    if (t < trips[d]) split = d;
  });
  for (let d = 0; d < split; d++) tiles[d] = 1;
  return tiles;
}

/** Pads a dims list to the 8 slots of a uniform array<vec4<u32>, 2>. */
export function dims8(v: readonly number[]): number[] {
  if (v.length > MAX_DIMS) throw new RangeError(`more than ${MAX_DIMS} dims`);
  const out = new Array<number>(MAX_DIMS).fill(0);
  v.forEach((x, i) => (out[i] = x));
  return out;
}

export function broadcastShapes(...shapes: (readonly number[])[]): number[] {
  const nd = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(nd).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = nd - s.length + i;
      const d = s[i];
      if (out[j] === 1) out[j] = d;
      else if (d !== 1 && d !== out[j]) {
        throw new Error(`shapes ${shapes.map((x) => shapeStr(x)).join(' and ')} cannot be broadcast together`);
      }
    }
  }
  return out;
}

/** Strides that read `t` as if expanded to `shape` (0 on broadcast dims). */
export function broadcastStrides(t: Tensor, shape: readonly number[]): number[] {
  const nd = shape.length;
  const out = new Array<number>(nd).fill(0);
  for (let i = 0; i < t.ndim; i++) {
    const j = nd - t.ndim + i;
    out[j] = t.shape[i] === 1 && shape[j] !== 1 ? 0 : t.strides[i];
  }
  return out;
}

export function ctx(op: string, ...tensors: (Tensor | null | undefined)[]): string {
  return `${op}(${tensors.map((t) => (t ? shapeStr(t.shape) : 'null')).join(', ')})`;
}

export const Unary = {
  copy: 0, neg: 1, exp: 2, log: 3, sqrt: 4, rsqrt: 5, abs: 6, sigmoid: 7, tanh: 8, relu: 9, gelu: 10, elu: 11,
  powScalar: 12, clamp: 13, affine: 14, gtScalar: 16, ltScalar: 17, eqScalar: 18, sign: 19, inRange: 20,
  scalarDiv: 21, scalarPow: 22,
} as const;

export const Binary = {
  add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, prelu: 7, gt: 8, lt: 9, eq: 10,
  reluBackward: 11, geluBackward: 12, eluBackward: 13, sigmoidBackward: 14, tanhBackward: 15, axpy: 17, mask: 18,
  powScalarBackward: 19,
} as const;

export const Ternary = { where: 0, preluBackwardInput: 1, preluBackwardWeight: 2, fma: 3, powBackward: 4 } as const;

const ENTRY = ['unary', 'binary', 'ternary'] as const;

/**
 * Merges adjacent dims that every operand walks as one (stride[d] = stride[d+1] * shape[d+1]) and
 * drops unit dims, so kernels do fewer index divisions: a contiguous op becomes 1-d, a per-channel
 * broadcast over [N, C, D, H, W] becomes [N, C, D*H*W]. The flat order of elements is unchanged.
 */
export function coalesceDims(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const keep = shape.map((n, d) => (n !== 1 ? d : -1)).filter((d) => d >= 0);
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (const d of keep) {
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((st, k) => outStrides[k][last] === st[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((st, k) => (outStrides[k][last] = st[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((st, k) => outStrides[k].push(st[d]));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}
const NAMES = ['a', 'b', 'c'] as const;

/**
 * Runs one elementwise kernel over the broadcast shape of `inputs`. Writes into `into` (any strided
 * view of the right shape) when given, else into a new contiguous tensor, which is returned.
 */
export function elementwise(
  op: number,
  inputs: Tensor[],
  scalars: { alpha?: number; beta?: number } = {},
  context = 'elementwise',
  into?: Tensor,
): Tensor {
  for (const t of inputs) t.assertAlive();
  const shape = into ? [...into.shape] : broadcastShapes(...inputs.map((t) => t.shape));
  if (into) broadcastShapes(shape, ...inputs.map((t) => t.shape)); // validates
  const out = into ?? Tensor.empty(shape, context);
  const n = out.size;
  if (n === 0) return out;
  const merged = coalesceDims(shape, [out.strides, ...inputs.map((t) => broadcastStrides(t, shape))]);
  const params: Record<string, number | number[]> = {
    shape: dims8(merged.shape),
    ndim: merged.shape.length,
    n,
    out_strides: dims8(merged.strides[0]),
    out_offset: out.offset,
    alpha: scalars.alpha ?? 0,
    beta: scalars.beta ?? 0,
  };
  const buffers: Record<string, GPUBuffer> = { out: out.storage.buffer };
  NAMES.forEach((name, i) => {
    const t = inputs[i];
    params[`${name}_strides`] = t ? dims8(merged.strides[i + 1]) : dims8([]);
    params[`${name}_offset`] = t ? t.offset : 0;
    if (t) buffers[name] = t.storage.buffer;
  });
  runtime().dispatch({
    kernel: 'elementwise',
    entry: ENTRY[inputs.length - 1],
    overrides: { OP: op, DENSE: merged.shape.length === 1 && merged.strides.every((st) => st[0] === 1) ? 1 : 0 },
    params,
    buffers,
    workgroups: Math.ceil(n / 256),
    context,
  });
  return out;
}
