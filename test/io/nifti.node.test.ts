// NIfTI reading and writing on the real scans in data/: dimensions, spacing, value
// ranges and affines as documented in data/README.md (facts of the files, not of this
// code), big-endian input, header extensions, and a write/read round trip keeping the geometry.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNifti, writeNifti } from '../../src/io/nifti.js';

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

describe('writeNifti', () => {
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
