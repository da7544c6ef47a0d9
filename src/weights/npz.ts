// NumPy .npy / .npz reader. An .npy is "\x93NUMPY", a version (1.0: u16 header length; 2.0 and
// 3.0: u32, 3.0 header in UTF-8), a Python dict literal {'descr', 'fortran_order', 'shape'}, then
// the raw array. An .npz is a zip of `<name>.npy` members, stored (np.savez) or deflated
// (np.savez_compressed). dtypes: <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1; C and Fortran order
// (Fortran arrays are transposed into C order on read). Arrays are read one at a time.
import { itemSize, type DType } from './dtype.js';
import { numelOf, type TensorRecord } from './record.js';
import { bytesSource, latin1, utf8, type ByteSource } from './source.js';
import { ZipArchive } from './zip.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
const DESCR: Record<string, DType> = { f4: 'F32', f8: 'F64', f2: 'F16', i8: 'I64', i4: 'I32', i2: 'I16', i1: 'I8', u1: 'U8', b1: 'BOOL' };
/** Header dicts are padded to 64 bytes; anything much longer is not an npy header. */
const MAX_HEADER = 1 << 20;

export interface NpyHeader {
  dtype: DType;
  shape: number[];
  fortranOrder: boolean;
  /** Offset of the array data from the start of the .npy. */
  dataOffset: number;
}

export function isNpy(head: Uint8Array): boolean {
  return MAGIC.every((b, i) => head[i] === b);
}

/** Parses the header at the start of an .npy (`head` must hold at least the header). */
export function parseNpyHeader(head: Uint8Array, what = 'npy'): NpyHeader {
  if (head.length < 10 || !isNpy(head)) throw new Error(`${what}: not an .npy array (bad magic)`);
  const major = head[6];
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let len: number;
  let start: number;
  if (major === 1) {
    len = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (head.length < 12) throw new Error(`${what}: truncated .npy header`);
    len = dv.getUint32(8, true);
    start = 12;
  } else throw new Error(`${what}: unsupported .npy format version ${major}.${head[7]}`);
  if (len > MAX_HEADER) throw new Error(`${what}: .npy header length ${len} is absurd (corrupt file)`);
  if (start + len > head.length) throw new Error(`${what}: .npy header length ${len} passes the end of the data (${head.length - start} bytes left)`);
  const text = (major === 3 ? utf8.decode(head.subarray(start, start + len)) : latin1(head.subarray(start, start + len))).trim();
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (!text.startsWith('{') || descr === undefined || fortran === undefined || shapeText === undefined) throw new Error(`${what}: malformed .npy header ${JSON.stringify(text.slice(0, 120))}`);
  const m = /^([<>|=]?)([a-zA-Z]\d*)$/.exec(descr);
  const dtype = m ? DESCR[m[2]] : undefined;
  if (!m || !dtype) throw new Error(`${what}: unsupported .npy dtype '${descr}' (supported: <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1)`);
  if (m[1] === '>' && itemSize[dtype] > 1) throw new Error(`${what}: big-endian dtype '${descr}' is not supported`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim().replace(/L$/, ''))
    .filter((s) => s.length)
    .map((s) => {
      if (!/^\d+$/.test(s)) throw new Error(`${what}: bad shape (${shapeText})`);
      return Number(s);
    });
  numelOf(shape, what);
  return { dtype, shape, fortranOrder: fortran === 'True', dataOffset: start + len };
}

/** Array bytes of an .npy in C order (Fortran-ordered data is transposed). */
export function npyData(npy: Uint8Array, h: NpyHeader, what = 'npy'): Uint8Array {
  const size = itemSize[h.dtype];
  const n = numelOf(h.shape, what);
  if (h.dataOffset + n * size > npy.length) throw new Error(`${what}: array data (${n * size} bytes for shape [${h.shape}]) passes the end of the file (${npy.length - h.dataOffset} bytes)`);
  const data = npy.subarray(h.dataOffset, h.dataOffset + n * size);
  if (!h.fortranOrder || h.shape.length < 2) return data.slice();
  // Fortran order: element (i0, ..., ik) sits at i0 + d0*(i1 + d1*(...)).
  const nd = h.shape.length;
  const fstride = new Array<number>(nd);
  for (let i = 0, s = 1; i < nd; i++) {
    fstride[i] = s;
    s *= h.shape[i];
  }
  const out = new Uint8Array(n * size);
  const idx = new Array<number>(nd).fill(0);
  let src = 0;
  for (let o = 0; o < n; o++) {
    out.set(data.subarray(src * size, src * size + size), o * size);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      src += fstride[d];
      if (idx[d] < h.shape[d]) break;
      src -= fstride[d] * h.shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Reads a whole in-memory .npy. */
export function readNpy(npy: Uint8Array, what = 'npy'): { dtype: DType; shape: number[]; data: Uint8Array } {
  const h = parseNpyHeader(npy, what);
  return { dtype: h.dtype, shape: h.shape, data: npyData(npy, h, what) };
}

export interface NpzArchive {
  archive: ZipArchive;
  /** Arrays by name (member name without `.npy`), headers parsed, data read on demand. */
  arrays: Map<string, TensorRecord>;
}

/** Opens an .npz: reads every member's header, no array data. */
export async function readNpz(source: ByteSource | Uint8Array): Promise<NpzArchive> {
  const src = source instanceof Uint8Array ? bytesSource(source, 'npz') : source;
  const head = await src.read(0, Math.min(4, src.size));
  if (!ZipArchive.isZip(head)) throw new Error(`${src.name}: not an .npz (zip) archive`);
  const archive = await ZipArchive.open(src);
  const arrays = new Map<string, TensorRecord>();
  for (const member of archive.names()) {
    if (!member.endsWith('.npy')) continue;
    const what = `${src.name}:${member}`;
    const first = await archive.readHead(member, 12);
    if (!isNpy(first)) throw new Error(`${what}: not an .npy array (bad magic)`);
    if (first.length < (first[6] === 1 ? 10 : 12)) throw new Error(`${what}: truncated .npy header (${first.length} bytes)`);
    const len = first[6] === 1 ? first[8] | (first[9] << 8) : new DataView(first.buffer, first.byteOffset, first.byteLength).getUint32(8, true);
    const headerLen = (first[6] === 1 ? 10 : 12) + Math.min(len, MAX_HEADER + 1);
    const h = parseNpyHeader(await archive.readHead(member, headerLen), what);
    const need = h.dataOffset + numelOf(h.shape, what) * itemSize[h.dtype];
    if (need > archive.entry(member).size) throw new Error(`${what}: array data for shape [${h.shape}] ${h.dtype} needs ${need} bytes, the member has ${archive.entry(member).size}`);
    arrays.set(member.slice(0, -4), {
      name: member.slice(0, -4),
      dtype: h.dtype,
      shape: h.shape,
      read: async () => npyData(await archive.read(member), h, what),
    });
  }
  return { archive, arrays };
}
