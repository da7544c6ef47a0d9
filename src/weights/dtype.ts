// Element types of checkpoint tensors (safetensors names: F32, F16, BF16, F64, I64, I32, I16, I8,
// U8, BOOL), their sizes, and the conversions the readers and writers need: any of them to f32
// (the runtime's storage), and f32 to f16 / bf16 (round to nearest even) for smaller files.

export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const itemSize: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(itemSize, s);
}

/** Data of one dtype as a typed array (I64 as BigInt64Array; F16/BF16 as raw Uint16Array bits). */
export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array;

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half bits -> number. */
export function f16BitsToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** number -> IEEE half bits, rounding the f32 value to nearest even; overflow gives +-Inf. */
export function numberToF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // may carry into the exponent: still correct (up to Inf)
  return sign | h;
}

export function bf16BitsToNumber(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0];
}

export function numberToBf16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40; // keep NaN a NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decodes little-endian bytes of `dtype` into f32 values. */
export function toFloat32(bytes: Uint8Array, dtype: DType, out?: Float32Array): Float32Array {
  const n = bytes.byteLength / itemSize[dtype];
  if (!Number.isInteger(n)) throw new Error(`weights: ${bytes.byteLength} bytes are not a whole number of ${dtype} elements`);
  const dst = out ?? new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      if (bytes.byteOffset % 4 === 0) dst.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
      else for (let i = 0; i < n; i++) dst[i] = dv.getFloat32(i * 4, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) dst[i] = dv.getFloat64(i * 8, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) dst[i] = f16BitsToNumber(dv.getUint16(i * 2, true));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) dst[i] = bf16BitsToNumber(dv.getUint16(i * 2, true));
      break;
    case 'I64':
      for (let i = 0; i < n; i++) dst[i] = Number(dv.getBigInt64(i * 8, true));
      break;
    case 'I32':
      for (let i = 0; i < n; i++) dst[i] = dv.getInt32(i * 4, true);
      break;
    case 'I16':
      for (let i = 0; i < n; i++) dst[i] = dv.getInt16(i * 2, true);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) dst[i] = dv.getInt8(i);
      break;
    case 'U8':
      for (let i = 0; i < n; i++) dst[i] = bytes[i];
      break;
    case 'BOOL':
      for (let i = 0; i < n; i++) dst[i] = bytes[i] ? 1 : 0;
      break;
  }
  return dst;
}

/** Encodes f32 values as little-endian bytes of a float dtype (F32, F16 or BF16). */
export function fromFloat32(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.length * 2);
  const dv = new DataView(out.buffer);
  const enc = dtype === 'F16' ? numberToF16Bits : numberToBf16Bits;
  for (let i = 0; i < values.length; i++) dv.setUint16(i * 2, enc(values[i]), true);
  return out;
}
