// The elementwise kernel family (shaders/elementwise.wgsl): unary, binary and ternary opcodes over
// strided, broadcast operands, its launcher, and the context string ops put in their errors.
import { runtime } from '../gpu/runtime.js';
import { Tensor, shapeStr } from '../tensor.js';
import { broadcastShapes, broadcastStrides, coalesceDims, dims8 } from './broadcast.js';

export type Scalar = number;
export type TensorOrScalar = Tensor | number;

export function ctx(op: string, ...tensors: (Tensor | null | undefined)[]): string {
  return `${op}(${tensors.map((t) => (t ? shapeStr(t.shape) : 'null')).join(', ')})`;
}

export const Unary = {
  copy: 0, neg: 1, exp: 2, log: 3, sqrt: 4, rsqrt: 5, abs: 6, sigmoid: 7, tanh: 8, relu: 9, gelu: 10, elu: 11,
  powScalar: 12, clamp: 13, affine: 14, gtScalar: 16, ltScalar: 17, eqScalar: 18, sign: 19, inRange: 20, sin: 21, cos: 22,
} as const;

export const Binary = {
  add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, prelu: 7, gt: 8, lt: 9, eq: 10,
  reluBackward: 11, geluBackward: 12, eluBackward: 13, sigmoidBackward: 14, tanhBackward: 15,
  powScalarBackward: 19,
} as const;

export const Ternary = { where: 0, preluBackwardInput: 1, preluBackwardWeight: 2, powBackward: 4 } as const;

const ENTRY = ['unary', 'binary', 'ternary'] as const;

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
