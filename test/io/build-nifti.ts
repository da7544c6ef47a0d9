// A NIfTI-1/2 file writer for tests, field by field at the offsets of nifti1.h and nifti2.h,
// independent of src/io: the reader's tests and its property tests build their inputs with it.
import { gzipSync } from 'fflate';

export interface NiftiSpec {
  version?: 1 | 2;
  littleEndian?: boolean;
  /** dim[1..] */
  dims: number[];
  datatype: number;
  /** stored values, x fastest */
  values: number[];
  /** pixdim[0..3]: qfac, dx, dy, dz */
  pixdim?: number[];
  slope?: number;
  inter?: number;
  qform?: { code: number; b: number; c: number; d: number; offset: number[] };
  sform?: { code: number; rows: number[][] };
  /** header extensions' contents (each padded to a multiple of 16 with its 8-byte esize/ecode) */
  extensions?: { code: number; data: Uint8Array }[];
  gzip?: boolean;
  magic?: string;
  /** xyzt_units (default 2 | 8: mm and s) */
  units?: number;
}

const SIZES: Record<number, number> = { 2: 1, 4: 2, 8: 4, 16: 4, 64: 8, 256: 1, 512: 2, 768: 4 };

/** A .nii (or .nii.gz) file from a spec, written field by field. */
export function buildNifti(s: NiftiSpec): Uint8Array {
  const version = s.version ?? 1;
  const le = s.littleEndian ?? true;
  const hdr = version === 1 ? 348 : 540;
  const exts = (s.extensions ?? []).map((e) => ({ code: e.code, data: e.data, size: Math.ceil((e.data.length + 8) / 16) * 16 }));
  const voxOffset = hdr + 4 + exts.reduce((a, e) => a + e.size, 0);
  const bytes = SIZES[s.datatype] ?? 4;
  const out = new Uint8Array(voxOffset + s.values.length * bytes);
  const v = new DataView(out.buffer);
  const pix = [...(s.pixdim ?? [1, 1, 1, 1]), 0, 0, 0, 0].slice(0, 8);
  const dim = [s.dims.length, ...s.dims, 1, 1, 1, 1, 1, 1, 1].slice(0, 8);
  const q = s.qform ?? { code: 0, b: 0, c: 0, d: 0, offset: [0, 0, 0] };
  const sf = s.sform ?? { code: 0, rows: [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]] };
  if (version === 1) {
    v.setInt32(0, 348, le);
    dim.forEach((d, i) => v.setInt16(40 + 2 * i, d, le));
    v.setInt16(70, s.datatype, le);
    v.setInt16(72, bytes * 8, le);
    pix.forEach((p, i) => v.setFloat32(76 + 4 * i, p, le));
    v.setFloat32(108, voxOffset, le);
    v.setFloat32(112, s.slope ?? 1, le);
    v.setFloat32(116, s.inter ?? 0, le);
    out[123] = s.units ?? 2 | 8; // mm, s
    v.setInt16(252, q.code, le);
    v.setInt16(254, sf.code, le);
    [q.b, q.c, q.d, ...q.offset].forEach((x, i) => v.setFloat32(256 + 4 * i, x, le));
    sf.rows.forEach((r, i) => r.forEach((x, j) => v.setFloat32(280 + 16 * i + 4 * j, x, le)));
    out.set([...(s.magic ?? 'n+1')].map((c) => c.charCodeAt(0)), 344);
  } else {
    v.setInt32(0, 540, le);
    out.set([...(s.magic ?? 'n+2'), '\0', '\r', '\n', '\x1a', '\n'].map((c) => c.charCodeAt(0)), 4);
    v.setInt16(12, s.datatype, le);
    v.setInt16(14, bytes * 8, le);
    dim.forEach((d, i) => v.setBigInt64(16 + 8 * i, BigInt(d), le));
    pix.forEach((p, i) => v.setFloat64(104 + 8 * i, p, le));
    v.setBigInt64(168, BigInt(voxOffset), le);
    v.setFloat64(176, s.slope ?? 1, le);
    v.setFloat64(184, s.inter ?? 0, le);
    v.setInt32(344, q.code, le);
    v.setInt32(348, sf.code, le);
    [q.b, q.c, q.d, ...q.offset].forEach((x, i) => v.setFloat64(352 + 8 * i, x, le));
    sf.rows.forEach((r, i) => r.forEach((x, j) => v.setFloat64(400 + 32 * i + 8 * j, x, le)));
    v.setInt32(500, s.units ?? 2 | 8, le);
  }
  if (exts.length) out[hdr] = 1;
  let o = hdr + 4;
  for (const e of exts) {
    v.setInt32(o, e.size, le);
    v.setInt32(o + 4, e.code, le);
    out.set(e.data, o + 8);
    o += e.size;
  }
  s.values.forEach((x, i) => {
    const p = voxOffset + i * bytes;
    switch (s.datatype) {
      case 2: v.setUint8(p, x); break;
      case 4: v.setInt16(p, x, le); break;
      case 8: v.setInt32(p, x, le); break;
      case 16: v.setFloat32(p, x, le); break;
      case 64: v.setFloat64(p, x, le); break;
      case 256: v.setInt8(p, x); break;
      case 512: v.setUint16(p, x, le); break;
      case 768: v.setUint32(p, x, le); break;
    }
  });
  return s.gzip ? gzipSync(out) : out;
}

