// Property test of readNifti (fast-check): valid NIfTI-1/2 files of both byte orders, with
// extensions, 4-D, scaling, qform and sform, are mutated (truncated, bits flipped, header fields set
// to huge or negative numbers, ranges spliced, magic changed), as .nii and as .nii.gz (mutated
// before compressing, and the gzip bytes themselves); every case must end in a volume or an Error
// naming the file, within a time bound. MEDSEG_FUZZ_RUNS=N runs N cases per property.
import { gzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { readNifti } from '../../src/io/nifti.js';
import { applyMutations, checkOutcome, fuzzRuns, type Mutation } from '../weights/mutate.js';
import { buildNifti, type NiftiSpec } from './build-nifti.js';

const ramp = (n: number) => Array.from({ length: n }, (_, i) => (i * 37) % 200);
const rows = [[-0.8, 0.1, 0, 100.5], [0.05, 0.9, 0.2, -50.25], [0, -0.3, 5, 12]];
const specs: NiftiSpec[] = [
  { dims: [5, 4, 3], datatype: 4, values: ramp(60), pixdim: [1, 0.8, 0.8, 3], sform: { code: 1, rows } },
  { version: 2, littleEndian: false, dims: [4, 3, 2, 2], datatype: 16, values: ramp(48), pixdim: [-1, 2, 3, 4], qform: { code: 1, b: 0, c: 0, d: Math.SQRT1_2, offset: [1, 2, 3] } },
  { littleEndian: false, dims: [6, 5], datatype: 2, values: ramp(30), slope: 2, inter: -3, extensions: [{ code: 6, data: new TextEncoder().encode('comment') }] },
  { version: 2, dims: [3, 3, 3], datatype: 64, values: ramp(27), extensions: [{ code: 4, data: new Uint8Array(20) }, { code: 6, data: new Uint8Array(3) }] },
  { dims: [2, 2, 2], datatype: 8, values: ramp(8), qform: { code: 2, b: 1, c: 0, d: 0, offset: [0, 0, 0] }, sform: { code: 2, rows } },
];
const files = specs.map((s) => buildNifti(s));
/** The header fields of both versions (nifti1.h / nifti2.h offsets), where mutations change structure. */
const HOT = [0, 4, 12, 14, 16, 24, 32, 40, 42, 44, 46, 48, 70, 72, 76, 80, 104, 108, 112, 116, 168, 176, 184, 252, 254, 256, 280, 344, 345, 348, 352, 356, 540, 544, 548];

describe('readNifti property test', () => {
  const name = 'fuzz.nii';
  const parse = (b: Uint8Array) => {
    const v = readNifti(b, name);
    // a volume read must be self-consistent
    expect(v.data.length).toBe(v.dims[0] * v.dims[1] * v.dims[2]);
    expect(v.affine.flat().every(Number.isFinite)).toBe(true);
    expect(v.spacing.every((x) => Number.isFinite(x) && x > 0)).toBe(true);
  };
  it('.nii: mutated files give a volume or a clear error', async () => {
    const o = await checkOutcome('readNifti .nii', files.map((bytes) => ({ bytes, hot: HOT })), parse, { runs: fuzzRuns(1500), name });
    expect(o.errors).toBeGreaterThan(0);
    expect(o.results).toBeGreaterThan(0);
  });
  it('.nii.gz: files mutated before compression, and the gzip bytes mutated', async () => {
    // before: the mutation is applied to the .nii, then compressed (outside the timed part)
    await checkOutcome('readNifti .nii.gz (inner)', files.map((bytes) => ({ bytes, hot: HOT })), parse, { runs: fuzzRuns(500), name, prepare: (b) => gzipSync(b) });
    await checkOutcome('readNifti .nii.gz (outer)', files.map((b) => ({ bytes: gzipSync(b), hot: [0, 1, 2, 3, 8, 9, 10, 11, 12] })), parse, { runs: fuzzRuns(500), name });
  });
});

describe('readNifti regressions and bombs', () => {
  it('a gzip bomb (16 MiB of zeros in 16 KiB) claiming a small volume gives that volume', () => {
    const nii = buildNifti({ dims: [4, 4, 4], datatype: 2, values: ramp(64) });
    const padded = new Uint8Array(16 << 20);
    padded.set(nii);
    const gz = gzipSync(padded, { level: 9 });
    expect(gz.length).toBeLessThan(1 << 15);
    expect([...readNifti(gz, 'bomb.nii.gz').data]).toEqual(ramp(64));
  });
  it('inflation stops after the first volume: a 4-D .nii.gz cut inside its second volume gives the first', () => {
    const n = 64 * 64 * 16;
    const values = Array.from({ length: 2 * n }, (_, i) => (i * 2654435761) >>> 24); // incompressible
    const gz = gzipSync(buildNifti({ dims: [64, 64, 16, 2], datatype: 2, values }), { level: 1 });
    const cut = gz.subarray(0, Math.floor(gz.length * 0.75));
    const v = readNifti(cut, 'cut4d.nii.gz');
    expect([...v.data]).toEqual(values.slice(0, n));
    expect(v.warnings).toEqual(['cut4d.nii.gz: 4-D image of 64x64x16x2: read the first of its 2 volumes']);
  });
  it('a gzip bomb whose header claims a huge volume is refused as truncated, not allocated in one piece', () => {
    const nii = buildNifti({ dims: [4, 4, 4], datatype: 16, values: ramp(64) });
    const v = new DataView(nii.buffer);
    [1, 2, 3].forEach((i) => v.setInt16(40 + 2 * i, 1200, true)); // 1200^3 float32 = 6.9 GB
    const padded = new Uint8Array(8 << 20);
    padded.set(nii);
    expect(() => readNifti(gzipSync(padded, { level: 9 }), 'bomb.nii.gz')).toThrow(/bomb\.nii\.gz: truncated: .* 6912000000 expected/);
  });
  it('(fuzzing) a NIfTI-2 affine in meters that overflows in mm is refused, not returned with Infinity', () => {
    const f = buildNifti({ version: 2, dims: [2, 2, 2], datatype: 2, values: ramp(8), units: 1, qform: { code: 1, b: 0, c: 0, d: 0, offset: [1e307, 0, 0] } });
    expect(() => readNifti(f, 'm.nii')).toThrow(/m\.nii: the qform \(quatern_b\/c\/d, qoffset, pixdim\) affine holds non-finite values in mm/);
  });
  it('(fuzzing) a NIfTI-2 pixdim in microns that underflows to 0 mm is refused, not returned as a zero voxel size', () => {
    const f = buildNifti({ version: 2, dims: [2, 2, 2], datatype: 2, values: ramp(8), units: 3, pixdim: [1, 2, 1e-322, 2] });
    expect(() => readNifti(f, 'u.nii')).toThrow(/u\.nii: pixdim holds voxel sizes that are not finite and positive \(2, 1e-322, 2, times 0\.001 to mm\)/);
  });
  it('mutation helpers: truncation keeps a prefix, int writes both byte orders', () => {
    const b = new Uint8Array(16);
    const ms: Mutation[] = [{ kind: 'int', at: 2, width: 4, value: 0x01020304n, littleEndian: false }, { kind: 'truncate', at: 8 }];
    expect([...applyMutations(b, ms)]).toEqual([0, 0, 1, 2, 3, 4, 0, 0]);
  });
});
