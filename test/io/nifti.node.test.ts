// NIfTI reading and writing on the real scans in data/: dimensions, spacing, value
// ranges and affines as documented in data/README.md (facts of the files, not of this
// code), big-endian input, header extensions, and a write/read round trip keeping the geometry.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { gzipSync } from 'fflate';
import { qformAffine, readNifti, writeNifti } from '../../src/io/nifti.js';
import { checkOutcome, fuzzRuns } from '../weights/mutate.js';

const DATA = join(__dirname, '../../data');
const load = (f: string) => readNifti(readFileSync(join(DATA, f)), f);
const range = (d: Float32Array) => d.reduce(([lo, hi], v) => [Math.min(lo, v), Math.max(hi, v)], [Infinity, -Infinity]);

describe('readNifti on the bundled scans', () => {
  it('MSD spleen crop: float32 CT with sform-only geometry, and its label', () => {
    const v = load('ct_spleen_msd09_crop.nii.gz');
    expect(v.dims).toEqual([164, 166, 26]);
    expect(v.spacing[0]).toBeCloseTo(0.7949, 4);
    expect(v.spacing[2]).toBeCloseTo(5, 5);
    const [lo, hi] = range(v.data);
    expect(lo).toBeCloseTo(-1019, 0);
    expect(hi).toBeCloseTo(949, 0);
    expect(v.affine[0][0]).toBeCloseTo(0.795, 3);
    expect(v.affine[0][3]).toBeCloseTo(-406.2, 1);
    const l = load('ct_spleen_msd09_crop_label.nii.gz');
    expect(l.datatype).toBe(2);
    expect(l.data.reduce((s, x) => s + x, 0)).toBe(96672);
  });
  it('TotalSegmentator CT: int16, and the seg file with a header extension', () => {
    const v = load('ct_abdomen_3mm_totalseg.nii.gz');
    expect(v.dims).toEqual([122, 101, 30]);
    expect(v.datatype).toBe(4);
    expect(range(v.data)).toEqual([-1100, 1207]);
    const s = load('ct_abdomen_3mm_totalseg_seg.nii.gz');
    expect(s.dims).toEqual([122, 101, 30]);
    expect(range(s.data)[1]).toBeLessThanOrEqual(117);
  });
  it('MR abdomen: negative x/y axes in the affine', () => {
    const v = load('mr_abdomen_3mm_totalseg.nii.gz');
    expect(v.dims).toEqual([117, 91, 20]);
    expect(v.affine[0][0]).toBeCloseTo(-3, 5);
    expect(v.affine[1][1]).toBeCloseTo(-3, 5);
    expect(v.affine[2][2]).toBeCloseTo(3, 5);
  });
  it('big-endian int16 brain crop', () => {
    const v = load('mr_brain_crop_nibabel.nii');
    expect(v.dims).toEqual([33, 41, 25]);
    expect(v.header.littleEndian).toBe(false);
    expect(range(v.data)).toEqual([-610, 30393]);
  });
  it('512x512 slice: a 2-D image read as one slice', () => {
    const v = load('ct_abdomen_slice512.nii.gz');
    expect(v.dims).toEqual([512, 512, 1]);
    expect(v.affine[0][0]).toBeCloseTo(-0.977, 3);
  });
  it('refuses what is not NIfTI, and truncated data', () => {
    expect(() => readNifti(new Uint8Array(400), 'zeros.nii')).toThrow(/zeros\.nii: not a NIfTI/);
    const raw = readFileSync(join(DATA, 'mr_brain_crop_nibabel.nii'));
    expect(() => readNifti(raw.subarray(0, 2000), 'cut.nii')).toThrow(/cut\.nii/);
  });
});

/** The voxels of a NIfTI-1 file decoded here with node:zlib and a DataView (independent of src/io). */
function decodeIndependently(file: Buffer) {
  const raw = file[0] === 0x1f && file[1] === 0x8b ? gunzipSync(file) : file;
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const le = v.getInt32(0, true) === 348;
  const n = [1, 2, 3].map((i) => Math.max(1, v.getInt16(40 + 2 * i, le))).reduce((a, b) => a * b, 1);
  const code = v.getInt16(70, le);
  const off = v.getFloat32(108, le);
  const slope = v.getFloat32(112, le);
  const inter = v.getFloat32(116, le);
  const read: Record<number, [number, (o: number) => number]> = { 2: [1, (o) => v.getUint8(o)], 4: [2, (o) => v.getInt16(o, le)], 16: [4, (o) => v.getFloat32(o, le)] };
  const [size, at] = read[code];
  const scale = slope !== 0 && Number.isFinite(slope);
  return Float32Array.from({ length: n }, (_, i) => (scale ? at(off + i * size) * slope + inter : at(off + i * size)));
}

describe('every file in data/', () => {
  const files = readdirSync(DATA).filter((f) => /\.nii(\.gz)?$/.test(f)).sort();
  it('is one of the eight NIfTI files described in data/README.md', () => {
    expect(files).toEqual(['ct_abdomen_3mm_totalseg.nii.gz', 'ct_abdomen_3mm_totalseg_seg.nii.gz', 'ct_abdomen_slice512.nii.gz', 'ct_abdomen_slice512_seg.nii.gz', 'ct_spleen_msd09_crop.nii.gz', 'ct_spleen_msd09_crop_label.nii.gz', 'mr_abdomen_3mm_totalseg.nii.gz', 'mr_brain_crop_nibabel.nii']);
  });
  for (const f of files) {
    it(`${f}: voxels equal an independent decode, no warnings, a finite affine whose columns have the voxel sizes`, () => {
      const bytes = readFileSync(join(DATA, f));
      const v = readNifti(bytes, f);
      expect(v.warnings).toEqual([]);
      const want = decodeIndependently(bytes);
      expect(v.data.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) if (v.data[i] !== want[i]) expect.fail(`${f}: voxel ${i} is ${v.data[i]}, decoded ${want[i]}`);
      for (let c = 0; c < 3; c++) expect(Math.hypot(v.affine[0][c], v.affine[1][c], v.affine[2][c]), `${f}: column ${c}`).toBeCloseTo(v.spacing[c], 3);
    });
  }
  it('a file with both qform and sform: the two describe the same geometry', () => {
    const v = load('ct_abdomen_slice512.nii.gz');
    expect(v.header.qform_code).toBeGreaterThan(0);
    expect(v.header.sform_code).toBeGreaterThan(0);
    const q = qformAffine(v.header);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) expect(q[r][c], `qform[${r}][${c}]`).toBeCloseTo(v.affine[r][c], 3);
  });
  it('the TotalSegmentator label map lists its header extension', () => {
    const s = load('ct_abdomen_3mm_totalseg_seg.nii.gz');
    expect(s.header.extensions.length).toBeGreaterThan(0);
    expect(s.header.vox_offset).toBeGreaterThan(352);
  });
});

describe('writeNifti', () => {
  it('a mask written for each scan in data/ reads back with its affine and orientation', () => {
    for (const f of readdirSync(DATA).filter((x) => /\.nii(\.gz)?$/.test(x))) {
      const scan = load(f);
      const mask = scan.data.map((x) => (x > 0 ? 1 : 0));
      const back = readNifti(writeNifti(mask, scan), `${f} mask`);
      expect(back.dims).toEqual(scan.dims);
      expect(back.header.qform_code, f).toBe(scan.header.qform_code);
      expect(back.header.sform_code, f).toBe(scan.header.sform_code);
      expect(Math.sign(back.header.pixDims[0] || 1), f).toBe(Math.sign(scan.header.pixDims[0] || 1));
      for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(back.affine[r][c], `${f}: affine[${r}][${c}]`).toBeCloseTo(scan.affine[r][c], 4);
      expect([...back.data]).toEqual([...mask]);
    }
  });
  it('round-trips a label map with the scan geometry', () => {
    const scan = load('ct_spleen_msd09_crop.nii.gz');
    const label = load('ct_spleen_msd09_crop_label.nii.gz');
    const bytes = writeNifti(label.data, scan, { datatype: 'uint8' });
    const back = readNifti(bytes, 'written.nii.gz');
    expect(back.dims).toEqual(scan.dims);
    expect(back.datatype).toBe(2);
    expect([...back.data]).toEqual([...label.data]);
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(back.affine[r][c]).toBeCloseTo(scan.affine[r][c], 4);
    expect(back.header.sform_code).toBe(scan.header.sform_code);
  });
  it('keeps qform and sform of a file that has both, and writes float32 and int16', () => {
    const scan = load('ct_abdomen_slice512.nii.gz');
    for (const datatype of ['int16', 'float32'] as const) {
      const back = readNifti(writeNifti(scan.data, scan, { datatype, gzip: datatype === 'int16' }), 'x');
      expect(back.header.qform_code).toBe(1);
      expect(back.header.sform_code).toBe(1);
      expect(back.header.quatern_b).toBeCloseTo(scan.header.quatern_b, 6);
      expect([...back.data.slice(0, 1000)]).toEqual([...scan.data.slice(0, 1000)]);
    }
  });
  it('refuses a voxel count that does not match the geometry', () => {
    const scan = load('mr_brain_crop_nibabel.nii');
    expect(() => writeNifti(new Float32Array(10), scan)).toThrow(/10 voxels/);
  });
});

describe('property test on real files', () => {
  const HOT = [0, 40, 42, 44, 46, 48, 70, 72, 76, 80, 108, 112, 116, 123, 252, 254, 256, 280, 344, 348, 352, 356];
  it('mutated copies of the big-endian brain crop and of the label map with an extension give a volume or a clear error', async () => {
    const brain = new Uint8Array(readFileSync(join(DATA, 'mr_brain_crop_nibabel.nii')));
    const seg = new Uint8Array(gunzipSync(readFileSync(join(DATA, 'ct_abdomen_3mm_totalseg_seg.nii.gz'))));
    await checkOutcome('readNifti (data/)', [{ bytes: brain, hot: HOT }], (b) => void readNifti(b, 'fuzz.nii'), { runs: fuzzRuns(300), name: 'fuzz.nii' });
    await checkOutcome('readNifti (data/, gzip)', [{ bytes: seg, hot: HOT }], (b) => void readNifti(b, 'fuzz.nii.gz'), { runs: fuzzRuns(100), name: 'fuzz.nii.gz', prepare: (b) => gzipSync(b, { level: 1 }) });
  });
});
