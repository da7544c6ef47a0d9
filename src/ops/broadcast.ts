// Shapes and strides for kernels over strided, broadcast operands: the broadcast shape, the strides
// that read a tensor as if expanded, dims merged where every operand walks them as one, and the
// 8-slot uniform arrays the kernels take them in.
import { Tensor, MAX_DIMS, shapeStr } from '../tensor.js';

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
