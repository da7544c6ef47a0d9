// NIfTI reading against headers built byte by byte here (the field offsets of nifti1.h and
// nifti2.h written out again, independent of src/io): NIfTI-1 and -2, both byte orders, every
// datatype medseg reads, scl_slope/scl_inter, qform, sform and which wins, header extensions,
// 2-D and 4-D images, .nii.gz, and a written mask keeping its scan's affine and orientation. Each
// expected value (voxels, affines) is put in by the test, never taken from the reader.
import { gzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { readNifti, writeNifti } from '../../src/io/nifti.js';
import { buildNifti, type NiftiSpec } from './build-nifti.js';

const close = (got: number[][], want: number[][], what: string) => {
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(got[r][c], `${what}: affine[${r}][${c}]`).toBeCloseTo(want[r][c], 5);
};

// 2x3x4 voxels; per datatype, values that use its range (and are exact in f32)
const DIMS = [2, 3, 4];
const ramp = (f: (i: number) => number) => Array.from({ length: 24 }, (_, i) => f(i));
const TYPES: { name: string; code: number; values: number[] }[] = [
  { name: 'uint8', code: 2, values: ramp((i) => (i * 11) % 256) },
  { name: 'int16', code: 4, values: ramp((i) => (i % 2 ? -1 : 1) * i * 1361) },
  { name: 'int32', code: 8, values: ramp((i) => (i % 2 ? -1 : 1) * i * 81_234) },
  { name: 'float32', code: 16, values: ramp((i) => (i - 12) * 0.375) },
  { name: 'float64', code: 64, values: ramp((i) => (i - 12) * 1e-3 * 2 ** -4) },
  { name: 'int8', code: 256, values: ramp((i) => i * 5 - 60) },
  { name: 'uint16', code: 512, values: ramp((i) => i * 2700) },
  { name: 'uint32', code: 768, values: ramp((i) => i * 150_000_000) },
];

describe('NIfTI-1 and NIfTI-2, both byte orders, every datatype', () => {
  for (const version of [1, 2] as const) {
    for (const littleEndian of [true, false]) {
      for (const t of TYPES) {
        it(`NIfTI-${version} ${littleEndian ? 'little' : 'big'}-endian ${t.name}`, () => {
          const file = buildNifti({ version, littleEndian, dims: DIMS, datatype: t.code, values: t.values, pixdim: [1, 0.5, 0.75, 2.5] });
          const v = readNifti(file, 'x.nii');
          expect(v.dims).toEqual([2, 3, 4]);
          expect(v.datatype).toBe(t.code);
          expect(v.header.version).toBe(version);
          expect(v.header.littleEndian).toBe(littleEndian);
          expect(v.spacing).toEqual([0.5, 0.75, 2.5]);
          expect([...v.data]).toEqual(t.values.map(Math.fround));
          expect(v.warnings).toEqual([]);
        });
      }
    }
  }

  it('.nii.gz of both versions and byte orders', () => {
    for (const version of [1, 2] as const) {
      for (const littleEndian of [true, false]) {
        const v = readNifti(buildNifti({ version, littleEndian, dims: DIMS, datatype: 4, values: TYPES[1].values, gzip: true }), 'x.nii.gz');
        expect([...v.data]).toEqual(TYPES[1].values);
      }
    }
  });
});

describe('scl_slope / scl_inter', () => {
  const stored = ramp((i) => i * 100 - 1000);
  it('applies slope and intercept (int16 stored, real values out)', () => {
    for (const version of [1, 2] as const) {
      const v = readNifti(buildNifti({ version, dims: DIMS, datatype: 4, values: stored, slope: 0.5, inter: -1024 }), 's.nii');
      expect([...v.data]).toEqual(stored.map((x) => x * 0.5 - 1024));
    }
  });
  it('applies them to uint8 and float32 too', () => {
    const v = readNifti(buildNifti({ dims: DIMS, datatype: 2, values: ramp((i) => i), slope: 2, inter: 1 }), 's.nii');
    expect([...v.data]).toEqual(ramp((i) => 2 * i + 1));
    const f = readNifti(buildNifti({ dims: DIMS, datatype: 16, values: ramp((i) => i / 4), slope: 4, inter: 0 }), 's.nii');
    expect([...f.data]).toEqual(ramp((i) => i));
  });
  it('slope 0 or NaN means unscaled (as nibabel reads it); a NaN intercept with a real slope is refused', () => {
    expect([...readNifti(buildNifti({ dims: DIMS, datatype: 4, values: stored, slope: 0, inter: 5 }), 's.nii').data]).toEqual(stored);
    expect([...readNifti(buildNifti({ dims: DIMS, datatype: 4, values: stored, slope: NaN, inter: 5 }), 's.nii').data]).toEqual(stored);
    expect(() => readNifti(buildNifti({ dims: DIMS, datatype: 4, values: stored, slope: 2, inter: NaN }), 's.nii')).toThrow(/s\.nii: scl_slope is 2 but scl_inter is NaN/);
  });
});

describe('qform, sform and which wins', () => {
  // 90 degrees about z: quaternion (a, b, c, d) = (cos 45, 0, 0, sin 45), R = [[0,-1,0],[1,0,0],[0,0,1]]
  const rotZ = { code: 1, b: 0, c: 0, d: Math.SQRT1_2, offset: [10, -20, 30] };
  const values = ramp((i) => i);
  it('qform alone: rotation, voxel sizes, qfac = -1 flips k', () => {
    for (const version of [1, 2] as const) {
      for (const littleEndian of [true, false]) {
        const v = readNifti(buildNifti({ version, littleEndian, dims: DIMS, datatype: 2, values, pixdim: [-1, 2, 3, 4], qform: rotZ }), 'q.nii');
        close(v.affine, [[0, -3, 0, 10], [2, 0, 0, -20], [0, 0, -4, 30], [0, 0, 0, 1]], `NIfTI-${version} ${littleEndian}`);
      }
    }
  });
  it('qform: a 180-degree rotation about x (a = 0) and qfac 0 read as 1', () => {
    const v = readNifti(buildNifti({ dims: DIMS, datatype: 2, values, pixdim: [0, 1, 2, 3], qform: { code: 2, b: 1, c: 0, d: 0, offset: [0, 0, 0] } }), 'q.nii');
    close(v.affine, [[1, 0, 0, 0], [0, -2, 0, 0], [0, 0, -3, 0], [0, 0, 0, 1]], '180 about x');
  });
  it('sform wins over qform when sform_code > 0; qform is used when sform_code is 0', () => {
    const rows = [[-0.8, 0.1, 0, 100.5], [0.05, 0.9, 0.2, -50.25], [0, -0.3, 5, 12]];
    for (const version of [1, 2] as const) {
      const both = readNifti(buildNifti({ version, dims: DIMS, datatype: 2, values, pixdim: [1, 2, 3, 4], qform: rotZ, sform: { code: 2, rows } }), 'b.nii');
      close(both.affine, [...rows, [0, 0, 0, 1]], `NIfTI-${version} sform`);
      const qOnly = readNifti(buildNifti({ version, dims: DIMS, datatype: 2, values, pixdim: [1, 2, 3, 4], qform: rotZ, sform: { code: 0, rows } }), 'b.nii');
      close(qOnly.affine, [[0, -3, 0, 10], [2, 0, 0, -20], [0, 0, 4, 30], [0, 0, 0, 1]], `NIfTI-${version} qform`);
    }
  });
  it('neither: the voxel sizes on the diagonal (NIfTI method 1)', () => {
    const v = readNifti(buildNifti({ dims: DIMS, datatype: 2, values, pixdim: [1, 0.5, 0.7, 3] }), 'n.nii');
    close(v.affine, [[0.5, 0, 0, 0], [0, 0.7, 0, 0], [0, 0, 3, 0], [0, 0, 0, 1]], 'method 1');
  });
  it('refuses an affine with non-finite values, naming the transform', () => {
    expect(() => readNifti(buildNifti({ dims: DIMS, datatype: 2, values, sform: { code: 1, rows: [[1, 0, 0, NaN], [0, 1, 0, 0], [0, 0, 1, 0]] } }), 'n.nii')).toThrow(/n\.nii: the sform .* non-finite/);
  });
});

describe('spatial units', () => {
  const values = ramp((i) => i);
  it('a scan in meters (xyzt_units 1) is read in mm, with a warning; its mask is written in mm', () => {
    for (const version of [1, 2] as const) {
      const rows = [[-0.0008, 0, 0, 0.1], [0, 0.0009, 0, -0.05], [0, 0, 0.005, 0.012]];
      const scan = readNifti(buildNifti({ version, dims: DIMS, datatype: 2, values, units: 1 | 8, pixdim: [-1, 0.0008, 0.0009, 0.005], sform: { code: 1, rows }, qform: { code: 1, b: 0, c: 0, d: Math.SQRT1_2, offset: [0.01, 0.02, 0.03] } }), 'm.nii');
      expect(scan.spacing.map((x) => +x.toFixed(6))).toEqual([0.8, 0.9, 5]);
      close(scan.affine, [[-0.8, 0, 0, 100], [0, 0.9, 0, -50], [0, 0, 5, 12], [0, 0, 0, 1]], 'meters');
      expect(scan.warnings).toEqual(['m.nii: spatial units are meters (xyzt_units 9): voxel sizes and affine converted to mm']);
      const back = readNifti(writeNifti(values, scan), 'mask.nii');
      expect(back.warnings).toEqual([]);
      expect(back.header.xyzt_units).toBe(2 | 8);
      close(back.affine, scan.affine, 'mask sform');
      // its qform, in mm too: rotation about z, qfac -1, offsets 10, 20, 30 mm
      const q = readNifti(writeNifti(values, { ...scan, header: { ...scan.header, sform_code: 0 } }), 'mask.nii');
      close(q.affine, [[0, -0.9, 0, 10], [0.8, 0, 0, 20], [0, 0, -5, 30], [0, 0, 0, 1]], 'mask qform');
    }
  });
  it('microns (3) are converted; unknown units (0) are read as mm', () => {
    const um = readNifti(buildNifti({ dims: DIMS, datatype: 2, values, units: 3, pixdim: [1, 500, 500, 2000] }), 'u.nii');
    expect(um.spacing).toEqual([0.5, 0.5, 2]);
    close(um.affine, [[0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]], 'microns');
    const unknown = readNifti(buildNifti({ dims: DIMS, datatype: 2, values, units: 0, pixdim: [1, 0.7, 0.7, 3] }), 'x.nii');
    expect(unknown.spacing).toEqual([Math.fround(0.7), Math.fround(0.7), 3]);
    expect(unknown.warnings).toEqual([]);
  });
});

describe('header extensions, 2-D and 4-D images', () => {
  it('skips header extensions to vox_offset and lists them', () => {
    for (const version of [1, 2] as const) {
      for (const littleEndian of [true, false]) {
        const extensions = [{ code: 6, data: new TextEncoder().encode('a comment') }, { code: 4, data: new Uint8Array(40).fill(7) }];
        const v = readNifti(buildNifti({ version, littleEndian, dims: DIMS, datatype: 4, values: TYPES[1].values, extensions }), 'e.nii');
        expect(v.header.extensions).toEqual([{ code: 6, size: 32 }, { code: 4, size: 48 }]);
        expect(v.header.vox_offset).toBe((version === 1 ? 352 : 544) + 80);
        expect([...v.data]).toEqual(TYPES[1].values);
      }
    }
  });
  it('a 2-D image is one slice', () => {
    const v = readNifti(buildNifti({ dims: [4, 3], datatype: 16, values: ramp((i) => i).slice(0, 12), pixdim: [1, 0.5, 0.25, 0] }), '2d.nii');
    expect(v.dims).toEqual([4, 3, 1]);
    expect(v.spacing).toEqual([0.5, 0.25, 1]);
    expect([...v.data]).toEqual(ramp((i) => i).slice(0, 12));
  });
  it('a 4-D image gives its first volume, with a warning', () => {
    const values = Array.from({ length: 24 * 3 }, (_, i) => i);
    for (const gzip of [false, true]) {
      const v = readNifti(buildNifti({ version: 2, dims: [2, 3, 4, 3], datatype: 4, values, gzip }), '4d.nii');
      expect(v.dims).toEqual([2, 3, 4]);
      expect([...v.data]).toEqual(values.slice(0, 24));
      expect(v.warnings).toEqual(['4d.nii: 4-D image of 2x3x4x3: read the first of its 3 volumes']);
    }
    expect(readNifti(buildNifti({ dims: [2, 3, 4, 1], datatype: 4, values: values.slice(0, 24) }), '4d.nii').warnings).toEqual([]);
  });
});

describe('a written mask keeps the scan geometry', () => {
  const mask = ramp((i) => i % 3);
  const rotZ = { code: 1, b: 0, c: 0, d: Math.SQRT1_2, offset: [10, -20, 30] };
  const rows = [[-0.8, 0.1, 0, 100.5], [0.05, 0.9, 0.2, -50.25], [0, -0.3, 5, 12]];
  const cases: { what: string; spec: Partial<NiftiSpec>; affine: number[][]; q: number; s: number }[] = [
    { what: 'big-endian NIfTI-2 scan with qform only, qfac -1', spec: { version: 2, littleEndian: false, pixdim: [-1, 2, 3, 4], qform: rotZ }, affine: [[0, -3, 0, 10], [2, 0, 0, -20], [0, 0, -4, 30]], q: 1, s: 0 },
    { what: 'NIfTI-1 scan with qform and sform', spec: { pixdim: [1, 2, 3, 4], qform: rotZ, sform: { code: 4, rows } }, affine: rows, q: 1, s: 4 },
    { what: 'NIfTI-1 scan with sform only', spec: { pixdim: [1, 0.8, 0.9, 5], sform: { code: 2, rows } }, affine: rows, q: 0, s: 2 },
    { what: 'scan with neither', spec: { pixdim: [1, 0.8, 0.9, 5] }, affine: [[0.8, 0, 0, 0], [0, 0.9, 0, 0], [0, 0, 5, 0]], q: 0, s: 0 },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const scan = readNifti(buildNifti({ dims: DIMS, datatype: 16, values: ramp((i) => i), ...c.spec }), 'scan.nii');
      for (const gzip of [false, true]) {
        const back = readNifti(writeNifti(mask, scan, { datatype: 'uint8', gzip }), 'mask.nii');
        expect(back.header.version).toBe(1);
        expect(back.header.qform_code).toBe(c.q);
        expect(back.header.sform_code).toBe(c.s);
        close(back.affine, [...c.affine, [0, 0, 0, 1]], c.what);
        expect(back.dims).toEqual([2, 3, 4]);
        expect([...back.data]).toEqual(mask);
      }
    });
  }
});

describe('refused with a message naming what is wrong', () => {
  const good = (o: Partial<NiftiSpec> = {}) => buildNifti({ dims: DIMS, datatype: 4, values: ramp((i) => i), ...o });
  const patch = (b: Uint8Array, f: (v: DataView) => void) => {
    const c = b.slice();
    f(new DataView(c.buffer));
    return c;
  };
  it('not NIfTI, a .hdr/.img pair, a wrong magic', () => {
    expect(() => readNifti(new Uint8Array(400), 'zeros.nii')).toThrow(/zeros\.nii: not a NIfTI-1\/2 file \(sizeof_hdr is 0/);
    expect(() => readNifti(good({ magic: 'ni1' }), 'p.hdr')).toThrow(/p\.hdr: .*\.hdr\/\.img pair/);
    expect(() => readNifti(good({ magic: 'xyz' }), 'm.nii')).toThrow(/m\.nii: not a NIfTI-1 file \(magic "xyz"/);
    expect(() => readNifti(good({ version: 2, magic: 'n+1' }), 'm.nii')).toThrow(/m\.nii: not a NIfTI-2 file/);
  });
  it('truncated header and truncated voxel data', () => {
    expect(() => readNifti(good().subarray(0, 300), 'c.nii')).toThrow(/c\.nii: truncated: 300 bytes, a NIfTI-1 header needs 348/);
    expect(() => readNifti(good().subarray(0, 352 + 40), 'c.nii')).toThrow(/c\.nii: truncated: 40 bytes of voxel data from vox_offset 352, 48 expected for 2x3x4 int16/);
    expect(() => readNifti(gzipSync(good()).subarray(0, 60), 'c.nii.gz')).toThrow(/c\.nii\.gz: (gzip data is corrupt|truncated)/);
  });
  it('bad dimensions, vox_offset and datatype', () => {
    expect(() => readNifti(patch(good(), (v) => v.setInt16(40, 0, true)), 'd.nii')).toThrow(/d\.nii: dim\[0\] is 0/);
    expect(() => readNifti(patch(good(), (v) => v.setInt16(44, 0, true)), 'd.nii')).toThrow(/d\.nii: dim\[2\] is 0/);
    expect(() => readNifti(patch(good(), (v) => v.setInt16(42, -5, true)), 'd.nii')).toThrow(/d\.nii: dim\[1\] is -5/);
    expect(() => readNifti(patch(good(), (v) => v.setFloat32(108, 100, true)), 'o.nii')).toThrow(/o\.nii: vox_offset is 100/);
    const zero = readNifti(patch(good(), (v) => v.setFloat32(108, 0, true)), 'z.nii');
    expect([...zero.data]).toEqual(ramp((i) => i));
    expect(zero.warnings).toEqual(['z.nii: vox_offset is 0: voxel data read from byte 352, after the header']);
    expect(() => readNifti(patch(good(), (v) => v.setFloat32(108, 352.5, true)), 'o.nii')).toThrow(/o\.nii: vox_offset is 352\.5/);
    expect(() => readNifti(patch(good(), (v) => v.setInt16(70, 32, true)), 't.nii')).toThrow(/t\.nii: unsupported NIfTI datatype 32 \(complex64\)/);
  });
  it('absurd dimensions are refused before anything is allocated', () => {
    const huge = patch(buildNifti({ version: 2, dims: DIMS, datatype: 16, values: [] }), (v) => [1, 2, 3].forEach((i) => v.setBigInt64(16 + 8 * i, 1n << 40n, true)));
    expect(() => readNifti(huge, 'h.nii')).toThrow(/h\.nii: dims 1099511627776x1099511627776x1099511627776 make .* voxels per volume, more than medseg reads/);
    const big = patch(good(), (v) => [1, 2, 3].forEach((i) => v.setInt16(40 + 2 * i, 30000, true)));
    expect(() => readNifti(big, 'b.nii')).toThrow(/more than medseg reads/);
    const fits = patch(good(), (v) => [1, 2, 3].forEach((i) => v.setInt16(40 + 2 * i, 1000, true)));
    expect(() => readNifti(gzipSync(fits), 'b.nii.gz')).toThrow(/b\.nii\.gz: truncated: 48 bytes of voxel data .* 2000000000 expected/);
  });
});
