// Float64 CPU arrays for the reference implementations: row-major data plus shape, and the
// broadcasting/indexing helpers the reference ops share. Independent of the GPU code.

export class Arr {
  constructor(
    readonly data: Float64Array,
    readonly shape: readonly number[],
  ) {
    if (data.length !== size(shape)) throw new Error(`Arr: ${data.length} values for shape [${shape}]`);
  }
  static zeros(shape: readonly number[]): Arr {
    return new Arr(new Float64Array(size(shape)), shape);
  }
  static from(values: ArrayLike<number>, shape: readonly number[]): Arr {
    return new Arr(Float64Array.from(values), shape);
  }
  get size(): number {
    return this.data.length;
  }
  get ndim(): number {
    return this.shape.length;
  }
  /** The values as float32 (what the GPU receives). */
  f32(): Float32Array {
    return Float32Array.from(this.data);
  }
  map(f: (x: number, i: number) => number): Arr {
    return new Arr(this.data.map(f), this.shape);
  }
  reshape(shape: readonly number[]): Arr {
    return new Arr(this.data, shape);
  }
  get(idx: readonly number[]): number {
    return this.data[flatIndex(idx, this.shape)];
  }
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function flatIndex(idx: readonly number[], shape: readonly number[]): number {
  let f = 0;
  for (let i = 0; i < shape.length; i++) f = f * shape[i] + idx[i];
  return f;
}

export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return idx;
}

export function broadcastShape(...shapes: (readonly number[])[]): number[] {
  const nd = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(nd).fill(1);
  for (const s of shapes) {
    s.forEach((d, i) => {
      const j = nd - s.length + i;
      if (out[j] === 1) out[j] = d;
      else if (d !== 1 && d !== out[j]) throw new Error(`reference: cannot broadcast [${shapes.join('] [')}]`);
    });
  }
  return out;
}

/** Reads `a` at the broadcast index `idx` of a larger shape. */
export function atBroadcast(a: Arr, idx: readonly number[]): number {
  let f = 0;
  const off = idx.length - a.ndim;
  for (let i = 0; i < a.ndim; i++) f = f * a.shape[i] + (a.shape[i] === 1 ? 0 : idx[off + i]);
  return a.data[f];
}

/** Deterministic test data: uniform on [lo, hi), rounded to float32 so both sides see equal inputs. */
export function randomArr(shape: readonly number[], seed: number, lo = -1, hi = 1): Arr {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const data = new Float64Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = Math.fround(lo + (hi - lo) * next());
  return new Arr(data, shape);
}
