// NIfTI-1/2 volumes (.nii, .nii.gz) in and out, from bytes (so the same code serves Node and the
// browser). Parsing is nifti-reader-js's; this file turns its header into a Volume (voxels as f32 in
// [z][y][x] order with scl_slope/inter applied, the voxel-to-world affine chosen as nibabel does:
// sform if sform_code > 0, else qform, else pixdim scaling), and writes a volume back with the
// geometry of a reference header, so a mask written for a scan overlays it in any viewer.
import * as nifti from 'nifti-reader-js';
import { gzipSync } from 'fflate';

export type Affine = number[][]; // 4x4, row-major, voxel (i, j, k, 1) -> world (x, y, z, 1) in mm

export interface Volume {
  /** voxel values, x fastest: index = (k * ny + j) * nx + i */
  data: Float32Array;
  /** [nx, ny, nz] */
  dims: [number, number, number];
  /** voxel size in mm [dx, dy, dz] */
  spacing: [number, number, number];
  affine: Affine;
  /** NIfTI datatype code of the stored voxels (2 uint8, 4 int16, 16 float32, ...) */
  datatype: number;
  /** the parsed header, kept to write outputs with the same geometry */
  header: nifti.NIFTI1 | nifti.NIFTI2;
}

const DATATYPES: Record<number, { name: string; bytes: number; read: (v: DataView, o: number, le: boolean) => number }> = {
  2: { name: 'uint8', bytes: 1, read: (v, o) => v.getUint8(o) },
  4: { name: 'int16', bytes: 2, read: (v, o, le) => v.getInt16(o, le) },
  8: { name: 'int32', bytes: 4, read: (v, o, le) => v.getInt32(o, le) },
  16: { name: 'float32', bytes: 4, read: (v, o, le) => v.getFloat32(o, le) },
  64: { name: 'float64', bytes: 8, read: (v, o, le) => v.getFloat64(o, le) },
  256: { name: 'int8', bytes: 1, read: (v, o) => v.getInt8(o) },
  512: { name: 'uint16', bytes: 2, read: (v, o, le) => v.getUint16(o, le) },
  768: { name: 'uint32', bytes: 4, read: (v, o, le) => v.getUint32(o, le) },
};

function toArrayBuffer(bytes: ArrayBuffer | Uint8Array): ArrayBuffer {
  if (bytes instanceof ArrayBuffer) return bytes;
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** Parses a .nii or .nii.gz file's bytes. 4-D files must hold a single volume. */
export function readNifti(bytes: ArrayBuffer | Uint8Array, name = 'NIfTI file'): Volume {
  let buf = toArrayBuffer(bytes);
  if (nifti.isCompressed(buf)) {
    try {
      buf = nifti.decompress(buf) as ArrayBuffer;
    } catch (e) {
      throw new Error(`${name}: gzip data is corrupt (${(e as Error).message})`);
    }
  }
  if (!nifti.isNIFTI(buf)) throw new Error(`${name}: not a NIfTI-1/2 file (no 'n+1'/'ni1'/'n+2' magic)`);
  const header = nifti.readHeader(buf);
  if (!header) throw new Error(`${name}: unreadable NIfTI header`);
  const [ndim, nx, ny, nz = 1, nt = 1] = header.dims;
  if (ndim > 4 || (ndim === 4 && nt > 1)) throw new Error(`${name}: ${ndim}-D image with ${nt} volumes; medseg reads single 3-D volumes`);
  const dims: [number, number, number] = [nx, ndim >= 2 ? ny : 1, ndim >= 3 ? nz : 1];
  const type = DATATYPES[header.datatypeCode];
  if (!type) throw new Error(`${name}: unsupported NIfTI datatype ${header.datatypeCode}`);
  const n = dims[0] * dims[1] * dims[2];
  const image = nifti.readImage(header, buf);
  if (image.byteLength < n * type.bytes) throw new Error(`${name}: truncated: ${image.byteLength} bytes of voxel data, ${n * type.bytes} expected`);
  const view = new DataView(image);
  const data = new Float32Array(n);
  const slope = header.scl_slope;
  const inter = header.scl_inter;
  const scale = Number.isFinite(slope) && slope !== 0 && !(slope === 1 && inter === 0);
  for (let i = 0; i < n; i++) {
    const v = type.read(view, i * type.bytes, header.littleEndian);
    data[i] = scale ? v * slope + inter : v;
  }
  const spacing = [1, 2, 3].map((i) => Math.abs(header.pixDims[i]) || 1) as [number, number, number];
  return { data, dims, spacing, affine: affineOf(header, buf, spacing), datatype: header.datatypeCode, header };
}

function affineOf(header: nifti.NIFTI1 | nifti.NIFTI2, buf: ArrayBuffer, spacing: number[]): Affine {
  if (header.sform_code > 0) {
    if (header instanceof nifti.NIFTI1) {
      // srow_x/y/z at bytes 280..327 of a NIfTI-1 header
      const v = new DataView(buf);
      const rows = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => v.getFloat32(280 + (r * 4 + c) * 4, header.littleEndian)));
      return [...rows, [0, 0, 0, 1]];
    }
    return header.affine.map((r) => [...r]);
  }
  if (header.qform_code > 0) return header.affine.map((r) => [...r]);
  return [
    [spacing[0], 0, 0, 0],
    [0, spacing[1], 0, 0],
    [0, 0, spacing[2], 0],
    [0, 0, 0, 1],
  ];
}

export interface WriteOptions {
  /** 'uint8' for label maps (default), 'int16' or 'float32' */
  datatype?: 'uint8' | 'int16' | 'float32';
  /** gzip the output (.nii.gz); default true */
  gzip?: boolean;
  description?: string;
}

/**
 * Encodes voxels with the geometry (dims, pixdim, qform, sform, units) of `like`'s header, as
 * NIfTI-1. `data` is x-fastest like Volume.data and must have as many voxels as `like`.
 */
export function writeNifti(data: ArrayLike<number>, like: Volume, options: WriteOptions = {}): Uint8Array {
  const n = like.dims[0] * like.dims[1] * like.dims[2];
  if (data.length !== n) throw new Error(`writeNifti: ${data.length} voxels for a ${like.dims.join('x')} volume`);
  const dtype = options.datatype ?? 'uint8';
  const code = { uint8: 2, int16: 4, float32: 16 }[dtype];
  const bytesPer = DATATYPES[code].bytes;
  const src = like.header;
  const h = new nifti.NIFTI1();
  h.littleEndian = true;
  h.dims = [3, like.dims[0], like.dims[1], like.dims[2], 1, 1, 1, 1];
  h.pixDims = [src.pixDims[0] || 1, ...like.spacing, 0, 0, 0, 0];
  h.datatypeCode = code;
  h.numBitsPerVoxel = bytesPer * 8;
  h.vox_offset = 352;
  h.scl_slope = 1;
  h.scl_inter = 0;
  h.xyzt_units = src.xyzt_units;
  h.qform_code = src.qform_code;
  h.sform_code = src.sform_code;
  h.quatern_b = src.quatern_b;
  h.quatern_c = src.quatern_c;
  h.quatern_d = src.quatern_d;
  h.qoffset_x = src.qoffset_x;
  h.qoffset_y = src.qoffset_y;
  h.qoffset_z = src.qoffset_z;
  h.affine = like.affine.map((r) => [...r]);
  h.description = (options.description ?? 'medseg').slice(0, 79);
  h.magic = 'n+1';
  h.extensionFlag = [0, 0, 0, 0];
  let lo = Infinity;
  let hi = -Infinity;
  const body = new ArrayBuffer(n * bytesPer);
  const v = new DataView(body);
  for (let i = 0; i < n; i++) {
    const x = data[i];
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
    if (dtype === 'uint8') v.setUint8(i, Math.max(0, Math.min(255, Math.round(x))));
    else if (dtype === 'int16') v.setInt16(i * 2, Math.max(-32768, Math.min(32767, Math.round(x))), true);
    else v.setFloat32(i * 4, x, true);
  }
  h.cal_min = Number.isFinite(lo) ? lo : 0;
  h.cal_max = Number.isFinite(hi) ? hi : 0;
  const head = new Uint8Array(h.toArrayBuffer(false)).slice(0, 348);
  const out = new Uint8Array(352 + body.byteLength);
  out.set(head, 0);
  // bytes 348..351: no extensions
  out.set(new Uint8Array(body), 352);
  return options.gzip === false ? out : gzipSync(out, { level: 6 });
}
