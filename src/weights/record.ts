// TensorRecord: one tensor of a checkpoint as the readers hand it out, before its bytes are
// read: name, dtype, shape, and `read()` giving its elements as contiguous little-endian bytes
// in row-major (C) order. Converters and loaders pull tensors one at a time through this, so a
// large checkpoint never has to be in memory at once.
import { itemSize, toFloat32, type DType } from './dtype.js';

export interface TensorRecord {
  name: string;
  dtype: DType;
  shape: number[];
  read(): Promise<Uint8Array>;
}

export const MAX_ELEMENTS = 2 ** 32;

export function numelOf(shape: readonly number[], what: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${what}: invalid shape [${shape.join(', ')}]`);
    n *= d;
  }
  if (n > MAX_ELEMENTS) throw new Error(`${what}: shape [${shape.join(', ')}] has ${n} elements, more than a weight tensor can hold`);
  return n;
}

export function byteLength(r: { dtype: DType; shape: number[] }): number {
  return numelOf(r.shape, r.dtype) * itemSize[r.dtype];
}

/** Reads a record's values as f32. */
export async function readFloat32(r: TensorRecord): Promise<Float32Array> {
  return toFloat32(await r.read(), r.dtype);
}

/** A record whose values are computed (e.g. a transposed kernel); `values` runs on read. */
export function derivedRecord(name: string, shape: number[], values: () => Promise<Float32Array>): TensorRecord {
  return {
    name,
    dtype: 'F32',
    shape,
    async read() {
      const v = await values();
      return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    },
  };
}
