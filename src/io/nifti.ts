// NIfTI-1/2 volumes (.nii, .nii.gz) in and out, from bytes (so the same code serves Node and the
// browser). The header is parsed here field by field (both versions, either byte order), every size
// checked against the file before anything is allocated, and a .nii.gz inflated only as far as the
// first volume needs. A Volume holds the voxels as f32 in [z][y][x] order with scl_slope/inter
// applied, and the voxel-to-world affine chosen as nibabel does: sform if sform_code > 0, else qform
// (quaternion, qfac from pixdim[0]) if qform_code > 0, else the NIfTI spec's method 1 (pixdim
// scaling), in mm (a file in meters or microns is converted, with a warning). A 4-D (or 5-D ...)
// file gives its first volume, with a warning. writeNifti writes a volume back as NIfTI-1 with the
// geometry of a reference header (qform, sform, pixdim, units), so a mask written for a scan
// overlays it in any viewer.
import { Gunzip, gzipSync } from 'fflate';

export type Affine = number[][]; // 4x4, row-major, voxel (i, j, k, 1) -> world (x, y, z, 1) in mm

/** The header fields medseg reads and writes back (names as in nifti1.h). */
export interface NiftiHeader {
  version: 1 | 2;
  littleEndian: boolean;
  /** dim[0..7]: dim[0] is the number of dimensions */
  dims: number[];
  /** pixdim[0..7]: pixdim[0] is qfac (-1 or 1) */
  pixDims: number[];
  datatypeCode: number;
  numBitsPerVoxel: number;
  /** byte offset of the voxel data in the (uncompressed) file */
  vox_offset: number;
  scl_slope: number;
  scl_inter: number;
  cal_min: number;
  cal_max: number;
  xyzt_units: number;
  dim_info: number;
  intent_code: number;
  qform_code: number;
  sform_code: number;
  quatern_b: number;
  quatern_c: number;
  quatern_d: number;
  qoffset_x: number;
  qoffset_y: number;
  qoffset_z: number;
  /** srow_x, srow_y, srow_z */
  srow: number[][];
  description: string;
  /** header extensions (code, size in bytes) between the header and vox_offset */
  extensions: { code: number; size: number }[];
  /** what was repaired while parsing (readNifti passes these on as warnings) */
  notes: string[];
}

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
  header: NiftiHeader;
  /** what was read other than asked (only the first of several volumes, a damaged extension, ...) */
  warnings?: string[];
}

type Reader = (v: DataView, o: number, le: boolean) => number;
const DATATYPES: Record<number, { name: string; bytes: number; read: Reader }> = {
  2: { name: 'uint8', bytes: 1, read: (v, o) => v.getUint8(o) },
  4: { name: 'int16', bytes: 2, read: (v, o, le) => v.getInt16(o, le) },
  8: { name: 'int32', bytes: 4, read: (v, o, le) => v.getInt32(o, le) },
  16: { name: 'float32', bytes: 4, read: (v, o, le) => v.getFloat32(o, le) },
  64: { name: 'float64', bytes: 8, read: (v, o, le) => v.getFloat64(o, le) },
  256: { name: 'int8', bytes: 1, read: (v, o) => v.getInt8(o) },
  512: { name: 'uint16', bytes: 2, read: (v, o, le) => v.getUint16(o, le) },
  768: { name: 'uint32', bytes: 4, read: (v, o, le) => v.getUint32(o, le) },
};
const OTHER_TYPES: Record<number, string> = { 1: 'binary', 32: 'complex64', 128: 'RGB24', 511: 'float128', 1024: 'int64', 1280: 'uint64', 1536: 'float128', 1792: 'complex128', 2048: 'complex256', 2304: 'RGBA32' };

/** One volume of more voxels than this is refused (8 GiB of f32). */
const MAX_VOXELS = 2 ** 31;

const u8View = (bytes: ArrayBuffer | Uint8Array) => (bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/**
 * Inflates a gzip stream, stopping once `enough(out)` returns the number of bytes wanted and that
 * many are there; output grows by doubling, so memory follows what the data really holds.
 */
function gunzipPrefix(gz: Uint8Array, name: string, wanted: (head: Uint8Array) => number): Uint8Array {
  let out = new Uint8Array(1 << 16);
  let got = 0;
  let want = Infinity;
  let ended = false;
  let headerError: unknown = null;
  const g = new Gunzip((chunk, final) => {
    if (final) ended = true;
    const take = Math.min(chunk.length, want - got);
    if (take <= 0) return;
    if (got + take > out.length) {
      const grown = new Uint8Array(Math.min(Math.max(out.length * 2, got + take), want === Infinity ? Number.MAX_SAFE_INTEGER : want));
      grown.set(out.subarray(0, got));
      out = grown;
    }
    out.set(chunk.subarray(0, take), got);
    got += take;
    if (want === Infinity) {
      try {
        const w = wanted(out.subarray(0, got));
        if (w >= 0) want = w;
      } catch (e) {
        // the header is wrong: stop inflating, report that rather than a gzip error
        headerError = e;
        want = got;
      }
    }
  });
  const STEP = 1 << 14; // a 16 KiB slice inflates to at most about 17 MB
  try {
    for (let off = 0; off < gz.length && got < want && !ended; off += STEP) g.push(gz.subarray(off, off + STEP));
    // the end of the stream only now: a final push of a cut stream throws before it hands out what it inflated
    if (got < want && !ended) g.push(new Uint8Array(0), true);
  } catch (e) {
    if (headerError) throw headerError;
    throw new Error(`${name}: gzip data is corrupt (${(e as Error).message})`);
  }
  if (headerError) throw headerError;
  return out.subarray(0, got);
}

/** Reads the header: throws an Error naming the field that is wrong. */
export function parseNiftiHeader(b: Uint8Array, name = 'NIfTI file'): NiftiHeader {
  if (b.length < 4) throw new Error(`${name}: not a NIfTI-1/2 file (${b.length} bytes)`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const sizeLE = v.getInt32(0, true);
  const sizeBE = v.getInt32(0, false);
  const version = sizeLE === 348 || sizeBE === 348 ? 1 : sizeLE === 540 || sizeBE === 540 ? 2 : 0;
  if (!version) throw new Error(`${name}: not a NIfTI-1/2 file (sizeof_hdr is ${sizeLE}, expected 348 or 540)`);
  const le = sizeLE === 348 || sizeLE === 540;
  const hdrSize = version === 1 ? 348 : 540;
  if (b.length < hdrSize) throw new Error(`${name}: truncated: ${b.length} bytes, a NIfTI-${version} header needs ${hdrSize}`);
  const magic = String.fromCharCode(...b.subarray(version === 1 ? 344 : 4, version === 1 ? 347 : 7));
  if (version === 1 && magic === 'ni1') throw new Error(`${name}: a NIfTI-1 .hdr of a .hdr/.img pair (magic 'ni1'); medseg reads single-file .nii / .nii.gz`);
  if (magic !== (version === 1 ? 'n+1' : 'n+2')) throw new Error(`${name}: not a NIfTI-${version} file (magic ${JSON.stringify(magic)}, expected 'n+${version}')`);
  const i16 = (o: number) => v.getInt16(o, le);
  const i32 = (o: number) => v.getInt32(o, le);
  const f32 = (o: number) => v.getFloat32(o, le);
  const f64 = (o: number) => v.getFloat64(o, le);
  const i64 = (o: number) => {
    const x = v.getBigInt64(o, le);
    return x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER) ? Number.NaN : Number(x);
  };
  const text = (o: number, n: number) => {
    const s = b.subarray(o, o + n);
    const z = s.indexOf(0);
    return String.fromCharCode(...(z < 0 ? s : s.subarray(0, z)));
  };
  const one = version === 1;
  const h: NiftiHeader = {
    version,
    littleEndian: le,
    dims: Array.from({ length: 8 }, (_, i) => (one ? i16(40 + 2 * i) : i64(16 + 8 * i))),
    pixDims: Array.from({ length: 8 }, (_, i) => (one ? f32(76 + 4 * i) : f64(104 + 8 * i))),
    datatypeCode: one ? i16(70) : i16(12),
    numBitsPerVoxel: one ? i16(72) : i16(14),
    vox_offset: one ? f32(108) : i64(168),
    scl_slope: one ? f32(112) : f64(176),
    scl_inter: one ? f32(116) : f64(184),
    cal_max: one ? f32(124) : f64(192),
    cal_min: one ? f32(128) : f64(200),
    xyzt_units: one ? b[123] : i32(500),
    dim_info: one ? b[39] : b[524],
    intent_code: one ? i16(68) : i32(504),
    qform_code: one ? i16(252) : i32(344),
    sform_code: one ? i16(254) : i32(348),
    quatern_b: one ? f32(256) : f64(352),
    quatern_c: one ? f32(260) : f64(360),
    quatern_d: one ? f32(264) : f64(368),
    qoffset_x: one ? f32(268) : f64(376),
    qoffset_y: one ? f32(272) : f64(384),
    qoffset_z: one ? f32(276) : f64(392),
    srow: [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => (one ? f32(280 + 16 * r + 4 * c) : f64(400 + 32 * r + 8 * c)))),
    description: text(one ? 148 : 240, 80),
    extensions: [],
    notes: [],
  };
  const ndim = h.dims[0];
  if (!(ndim >= 1 && ndim <= 7)) throw new Error(`${name}: dim[0] is ${ndim}; a NIfTI image has 1 to 7 dimensions`);
  for (let i = 1; i <= ndim; i++) {
    if (!(Number.isSafeInteger(h.dims[i]) && h.dims[i] >= 1)) throw new Error(`${name}: dim[${i}] is ${h.dims[i]}; every dimension needs at least one voxel`);
  }
  for (let i = ndim + 1; i < 8; i++) h.dims[i] = 1;
  if (h.vox_offset === 0) {
    // some writers leave it 0 in single files; nibabel reads those from the end of the header
    h.vox_offset = hdrSize + 4;
    h.notes.push(`vox_offset is 0: voxel data read from byte ${h.vox_offset}, after the header`);
  }
  if (!Number.isSafeInteger(h.vox_offset) || h.vox_offset < hdrSize) throw new Error(`${name}: vox_offset is ${h.vox_offset}; the voxel data must start after the ${hdrSize}-byte header`);
  // Extensions: a 4-byte flag after the header, then (esize, ecode, data) records up to vox_offset.
  if (b.length >= hdrSize + 4 && b[hdrSize] !== 0) {
    let o = hdrSize + 4;
    while (o + 8 <= Math.min(h.vox_offset, b.length)) {
      const size = i32(o);
      const code = i32(o + 4);
      if (size < 8 || o + size > h.vox_offset) break; // damaged: vox_offset still says where the data is
      h.extensions.push({ code, size });
      o += size;
    }
  }
  return h;
}

/** Voxel-to-world affine from the quaternion fields (NIfTI method 2). */
export function qformAffine(h: NiftiHeader): Affine {
  let [b, c, d] = [h.quatern_b, h.quatern_c, h.quatern_d];
  let a2 = 1 - (b * b + c * c + d * d);
  if (a2 < 1e-7) {
    // a 180-degree rotation (a = 0), stored with b, c, d slightly off the unit sphere: renormalise
    const s = Math.hypot(b, c, d) || 1;
    (b /= s), (c /= s), (d /= s);
    a2 = 0;
  }
  const a = Math.sqrt(a2);
  const R = [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
  ];
  const qfac = h.pixDims[0] < 0 ? -1 : 1;
  const zoom = [1, 2, 3].map((i) => Math.abs(h.pixDims[i]) || 1);
  zoom[2] *= qfac;
  const off = [h.qoffset_x, h.qoffset_y, h.qoffset_z];
  return [...[0, 1, 2].map((r) => [R[r][0] * zoom[0], R[r][1] * zoom[1], R[r][2] * zoom[2], off[r]]), [0, 0, 0, 1]];
}

/** The affine a viewer uses: sform, else qform, else pixdim scaling; which one, for messages. */
export function bestAffine(h: NiftiHeader): { affine: Affine; source: 'sform' | 'qform' | 'pixdim' } {
  if (h.sform_code > 0) return { affine: [...h.srow.map((r) => [...r]), [0, 0, 0, 1]], source: 'sform' };
  if (h.qform_code > 0) return { affine: qformAffine(h), source: 'qform' };
  const s = [1, 2, 3].map((i) => Math.abs(h.pixDims[i]) || 1);
  return { affine: [[s[0], 0, 0, 0], [0, s[1], 0, 0], [0, 0, s[2], 0], [0, 0, 0, 1]], source: 'pixdim' };
}

/** Parses a .nii or .nii.gz file's bytes. Of a 4-D (or higher) image, the first volume is read. */
export function readNifti(bytes: ArrayBuffer | Uint8Array, name = 'NIfTI file'): Volume {
  let buf = u8View(bytes);
  const warnings: string[] = [];
  /** Bytes the file needs up to the end of its first volume, once the header can be parsed (-1 before). */
  const needed = (head: Uint8Array) => {
    if (head.length < 4) return -1;
    const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
    const big = v.getInt32(0, true) === 540 || v.getInt32(0, false) === 540;
    if (head.length < (big ? 544 : 352)) return -1;
    const h = parseNiftiHeader(head, name);
    return h.vox_offset + volumeBytes(h, name);
  };
  if (isGzip(buf)) buf = gunzipPrefix(buf, name, needed);
  const h = parseNiftiHeader(buf, name);
  for (const note of h.notes) warnings.push(`${name}: ${note}`);
  const type = DATATYPES[h.datatypeCode];
  if (!type) throw new Error(`${name}: unsupported NIfTI datatype ${h.datatypeCode}${OTHER_TYPES[h.datatypeCode] ? ` (${OTHER_TYPES[h.datatypeCode]})` : ''}; medseg reads ${Object.values(DATATYPES).map((t) => t.name).join(', ')}`);
  const n = volumeBytes(h, name) / type.bytes;
  const dims: [number, number, number] = [h.dims[1], h.dims[2], h.dims[3]];
  const volumes = h.dims.slice(4).reduce((a, d) => a * d, 1);
  if (volumes > 1) warnings.push(`${name}: ${h.dims[0]}-D image of ${h.dims.slice(1, h.dims[0] + 1).join('x')}: read the first of its ${volumes} volumes`);
  if (h.vox_offset + n * type.bytes > buf.length) throw new Error(`${name}: truncated: ${Math.max(0, buf.length - h.vox_offset)} bytes of voxel data from vox_offset ${h.vox_offset}, ${n * type.bytes} expected for ${dims.join('x')} ${type.name}`);
  let slope = h.scl_slope;
  let inter = h.scl_inter;
  if (slope === 0 || !Number.isFinite(slope)) (slope = 1), (inter = 0); // nibabel: no scaling
  else if (!Number.isFinite(inter)) throw new Error(`${name}: scl_slope is ${slope} but scl_inter is ${inter}`);
  const scale = slope !== 1 || inter !== 0;
  const view = new DataView(buf.buffer, buf.byteOffset + h.vox_offset, n * type.bytes);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = type.read(view, i * type.bytes, h.littleEndian);
    data[i] = scale ? x * slope + inter : x;
  }
  const { affine, source } = bestAffine(h);
  // Volume speaks mm: a file in meters or microns (xyzt_units) is converted.
  const unit = spatialScale(h.xyzt_units);
  if (unit !== 1) {
    warnings.push(`${name}: spatial units are ${unit > 1 ? 'meters' : 'microns'} (xyzt_units ${h.xyzt_units}): voxel sizes and affine converted to mm`);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) affine[r][c] *= unit;
  }
  const spacing = [1, 2, 3].map((i) => (Math.abs(h.pixDims[i]) || 1) * unit) as [number, number, number];
  const what = source === 'sform' ? 'sform (srow_x/y/z)' : source === 'qform' ? 'qform (quatern_b/c/d, qoffset, pixdim)' : 'pixdim';
  if (!affine.flat().every(Number.isFinite)) throw new Error(`${name}: the ${what} affine holds non-finite values${unit !== 1 ? ' in mm' : ''}`);
  // (a tiny pixdim in microns underflows to 0 mm)
  if (!spacing.every((s) => Number.isFinite(s) && s > 0)) throw new Error(`${name}: pixdim holds voxel sizes that are not finite and positive (${h.pixDims.slice(1, 4).join(', ')}${unit !== 1 ? `, times ${unit} to mm` : ''})`);
  return { data, dims, spacing, affine, datatype: h.datatypeCode, header: h, warnings };
}

/** mm per spatial unit of xyzt_units' low 3 bits (1 meter, 2 mm, 3 micron; 0 unknown, read as mm). */
function spatialScale(xyztUnits: number): number {
  const u = xyztUnits & 7;
  return u === 1 ? 1000 : u === 3 ? 0.001 : 1;
}

/** Bytes of one 3-D volume, refused before anything is allocated when absurd. */
function volumeBytes(h: NiftiHeader, name: string): number {
  const type = DATATYPES[h.datatypeCode];
  if (!type) return 0;
  const n = h.dims[1] * h.dims[2] * h.dims[3];
  if (n > MAX_VOXELS) throw new Error(`${name}: dims ${h.dims.slice(1, 4).join('x')} make ${n} voxels per volume, more than medseg reads (${MAX_VOXELS})`);
  return n * type.bytes;
}

export interface WriteOptions {
  /** 'uint8' for label maps (default), 'int16' or 'float32' */
  datatype?: 'uint8' | 'int16' | 'float32';
  /** gzip the output (.nii.gz); default true */
  gzip?: boolean;
  description?: string;
}

/**
 * Encodes voxels with the geometry (dims, pixdim and qfac, qform, sform, units) of `like`'s header,
 * as NIfTI-1 (a NIfTI-2 reference's double fields are rounded to f32). `data` is x-fastest like
 * Volume.data and must have as many voxels as `like`.
 */
export function writeNifti(data: ArrayLike<number>, like: Volume, options: WriteOptions = {}): Uint8Array {
  const n = like.dims[0] * like.dims[1] * like.dims[2];
  if (data.length !== n) throw new Error(`writeNifti: ${data.length} voxels for a ${like.dims.join('x')} volume`);
  const dtype = options.datatype ?? 'uint8';
  const code = { uint8: 2, int16: 4, float32: 16 }[dtype];
  const bytesPer = DATATYPES[code].bytes;
  const src = like.header;
  const out = new Uint8Array(352 + n * bytesPer);
  const v = new DataView(out.buffer);
  v.setInt32(0, 348, true);
  out[39] = src.dim_info & 0xff;
  const dims = [3, like.dims[0], like.dims[1], like.dims[2], 1, 1, 1, 1];
  dims.forEach((d, i) => v.setInt16(40 + 2 * i, d, true));
  v.setInt16(70, code, true);
  v.setInt16(72, bytesPer * 8, true);
  const pix = [src.pixDims[0] < 0 ? -1 : 1, ...like.spacing, 0, 0, 0, 0];
  pix.forEach((p, i) => v.setFloat32(76 + 4 * i, p, true));
  v.setFloat32(108, 352, true);
  v.setFloat32(112, 1, true);
  v.setFloat32(116, 0, true);
  // the volume's geometry is in mm (converted on reading if the scan was not): so is the output's
  const unit = spatialScale(src.xyzt_units);
  out[123] = (unit === 1 ? src.xyzt_units : (src.xyzt_units & ~7) | 2) & 0xff;
  const desc = (options.description ?? 'medseg').slice(0, 79);
  for (let i = 0; i < desc.length; i++) out[148 + i] = desc.charCodeAt(i) & 0x7f;
  v.setInt16(252, src.qform_code, true);
  v.setInt16(254, src.sform_code, true);
  [src.quatern_b, src.quatern_c, src.quatern_d, src.qoffset_x * unit, src.qoffset_y * unit, src.qoffset_z * unit].forEach((q, i) => v.setFloat32(256 + 4 * i, q, true));
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) v.setFloat32(280 + 16 * r + 4 * c, like.affine[r][c], true);
  out.set([0x6e, 0x2b, 0x31, 0], 344); // 'n+1\0'; bytes 348..351: no extensions
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = data[i];
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
    const o = 352 + i * bytesPer;
    if (dtype === 'uint8') out[o] = Math.max(0, Math.min(255, Math.round(x)));
    else if (dtype === 'int16') v.setInt16(o, Math.max(-32768, Math.min(32767, Math.round(x))), true);
    else v.setFloat32(o, x, true);
  }
  v.setFloat32(124, Number.isFinite(hi) ? hi : 0, true);
  v.setFloat32(128, Number.isFinite(lo) ? lo : 0, true);
  return options.gzip === false ? out : gzipSync(out, { level: 6 });
}
