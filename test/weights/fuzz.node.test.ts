// Property tests of the weight readers (fast-check): valid .pth (zip, written here and by the real
// torch.save; legacy), .npz / .npy, safetensors, zip archives and pickles are mutated (truncated,
// bits flipped, record fields set to huge or negative numbers, ranges spliced, magic changed), and
// every case must end, after reading every tensor the reader offers, in a result or an Error naming
// the file, within a time bound. Then the zip tricks fuzzing does not reach by chance: bombs,
// overlapping and duplicate members, nested archives. MEDSEG_FUZZ_RUNS=N runs N cases per property.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { bytesSource, openCheckpoint, readNpy, readNpz, readPth, readSafetensors, serializeSafetensors, stateDict, unpickle, ZipArchive } from '../../src/weights/index.js';
import { StorageRef, torchGlobals } from '../../src/weights/pth.js';
import { makeTensor, PickleWriter, writeNpy, writeNpz, writePth, type FixtureTensor } from '../fixtures/make-checkpoints.js';
import { checkOutcome, fuzzRuns, zipHotOffsets } from './mutate.js';

const TORCH = join(__dirname, '../fixtures/torch');
const torchFile = (f: string) => new Uint8Array(readFileSync(join(TORCH, f)));
const seed = (bytes: Uint8Array, extraHot: number[] = []) => ({ bytes, hot: [...zipHotOffsets(bytes), ...extraHot, 0, 1, 2, 3, 4, 6, 8] });

const small: FixtureTensor[] = [makeTensor('conv.weight', [3, 2, 2]), makeTensor('fc.weight', [4, 3]), makeTensor('fc.bias', [4], 'F16'), makeTensor('n', [], 'I64'), makeTensor('m', [2, 2], 'BOOL')];

/** Pickle opcode positions of a pickle: every byte of a small one. */
const everyByte = (b: Uint8Array, from = 0, to = b.length) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

describe('weight readers property tests', () => {
  it('.pth: zip (written here, and by torch.save) and legacy torch.save files', async () => {
    const name = 'fuzz.pth';
    const seeds = [
      seed(writePth(small, { protocol: 2 })),
      seed(writePth(small, { protocol: 4, modes: ['transposed', 'shared', 'padded'], wrap: 'train', modulePrefix: true, metadata: true, parameters: true })),
      seed(torchFile('zip_state_dict.pth')),
      seed(torchFile('legacy_state_dict.pth'), everyByte(torchFile('legacy_state_dict.pth'), 0, 200)),
      seed(torchFile('legacy_nested_protocol4.pth'), everyByte(torchFile('legacy_nested_protocol4.pth'), 0, 120)),
    ];
    const o = await checkOutcome('readPth', seeds, async (b) => {
      const ck = await readPth(bytesSource(b, name));
      const sd = stateDict(ck.root, name);
      for (const [k, t] of sd.tensors) await ck.record(k, t).read();
    }, { runs: fuzzRuns(1000), name });
    expect(o.errors).toBeGreaterThan(0);
  });

  it('.npz (stored and deflated, npy v1-v3, Fortran order) and .npy', async () => {
    const name = 'fuzz.npz';
    const arrays = [makeTensor('a/kernel', [3, 2, 4]), makeTensor('b', [5, 3], 'F64'), makeTensor('c', [4], 'F16'), makeTensor('s', [])];
    const npy = (b: Uint8Array) => [...zipHotOffsets(b), ...[...b.keys()].filter((i) => b[i] === 0x93 && b[i + 1] === 0x4e).flatMap((i) => everyByte(b, i, i + 80))];
    const seeds = [writeNpz(arrays, { versions: [1, 2, 3], fortranEvery: 2 }), writeNpz(arrays, { compressed: true, versions: [1, 3] })].map((bytes) => ({ bytes, hot: npy(bytes) }));
    await checkOutcome('readNpz', seeds, async (b) => {
      const z = await readNpz(bytesSource(b, name));
      for (const r of z.arrays.values()) await r.read();
    }, { runs: fuzzRuns(800), name });
    const one = writeNpy(makeTensor('x', [3, 4]), { version: 1, fortran: true });
    await checkOutcome('readNpy', [{ bytes: one, hot: everyByte(one, 0, 80) }, { bytes: writeNpy(makeTensor('y', [5], 'F64'), { version: 3 }), hot: everyByte(one, 0, 80) }], (b) => readNpy(b, 'fuzz.npy'), { runs: fuzzRuns(400), name: 'fuzz.npy' });
  });

  it('safetensors', async () => {
    const name = 'fuzz.safetensors';
    const file = await serializeSafetensors(
      new Map([
        ['a', { shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
        ['b', { dtype: 'F16' as const, shape: [2], data: new Uint8Array([0, 0x3c, 0, 0xc0]) }],
        ['c', { dtype: 'I64' as const, shape: [], data: new Uint8Array(8).fill(1) }],
      ]),
      { note: 'x' },
    );
    await checkOutcome('readSafetensors', [{ bytes: file, hot: everyByte(file, 0, Math.min(file.length, 200)) }], async (b) => {
      const f = await readSafetensors(bytesSource(b, name));
      for (const t of f.tensors) await t.read();
    }, { runs: fuzzRuns(800), name });
  });

  it('zip archives (fflate stored and deflated members, zip64 local headers)', async () => {
    const name = 'fuzz.zip';
    const text = new TextEncoder().encode('state dict '.repeat(200));
    const seeds = [zipSync({ 'a/data.pkl': [text, { level: 9 }], 'a/data/0': [new Uint8Array(300).map((_, i) => i), { level: 0 }] }), writeNpz([makeTensor('w', [8])])].map((b) => seed(b));
    await checkOutcome('ZipArchive', seeds, async (b) => {
      const z = await ZipArchive.open(bytesSource(b, name));
      for (const n of z.names()) {
        await z.readHead(n, 16);
        await z.read(n);
      }
    }, { runs: fuzzRuns(800), name });
  });

  it('pickles (protocol 2 and 4) through the allow-listed interpreter', async () => {
    const name = 'fuzz.pkl';
    const storage = { key: '0', dtype: 'F32' as const, numel: 12, data: () => new Uint8Array(48) };
    const root = { dict: [['w', { tensor: { storage, offset: 0, shape: [3, 4], stride: [4, 1] } }], ['meta', { dict: [['lr', { float: 0.1 }], ['ids', [1, 2, 3000, -5]], ['t', { tuple: ['x', null, true] }]] }], ['best', { numpyFloat64: 0.5 }]] as [never, never][], ordered: true };
    const seeds = [2, 4].map((p) => {
      const bytes = new PickleWriter(p as 2 | 4).finish(root);
      return { bytes, hot: everyByte(bytes) };
    });
    await checkOutcome('unpickle', seeds, (b) => unpickle(b, { globals: torchGlobals, name, persistentLoad: () => new StorageRef('0', 'F32', 12, 'cpu') }), { runs: fuzzRuns(1000), name });
  });

  it('any checkpoint through format detection (openCheckpoint)', async () => {
    const name = 'fuzz.bin';
    const st = await serializeSafetensors(new Map([['a', { shape: [2], data: new Float32Array([1, 2]) }]]));
    const seeds = [writePth(small), writeNpz(small.slice(0, 2)), st, torchFile('legacy_train_checkpoint.pth')].map((b) => seed(b, everyByte(b, 0, 64)));
    await checkOutcome('openCheckpoint', seeds, async (b) => {
      const ck = await openCheckpoint(bytesSource(b, name));
      for (const r of ck.tensors.values()) await r.read();
    }, { runs: fuzzRuns(600), name });
  });
});

/** A zip archive assembled record by record, for tricks a zip writer will not produce. */
function rawZip(members: { name: string; data: Uint8Array; method?: number; size?: number; crc?: number }[], central?: (offsets: number[]) => { name: string; at: number; method: number; compressed: number; size: number; crc: number }[]) {
  const parts: Uint8Array[] = [];
  let off = 0;
  const offsets: number[] = [];
  const push = (b: Uint8Array) => (parts.push(b), (off += b.length));
  const meta: { name: string; at: number; method: number; compressed: number; size: number; crc: number }[] = [];
  for (const m of members) {
    const nb = new TextEncoder().encode(m.name);
    const h = new Uint8Array(30 + nb.length);
    const v = new DataView(h.buffer);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(8, m.method ?? 0, true);
    v.setUint32(18, m.data.length, true);
    v.setUint32(22, m.size ?? m.data.length, true);
    v.setUint16(26, nb.length, true);
    h.set(nb, 30);
    offsets.push(off);
    meta.push({ name: m.name, at: off, method: m.method ?? 0, compressed: m.data.length, size: m.size ?? m.data.length, crc: m.crc ?? 0 });
    push(h);
    push(m.data);
  }
  const entries = central ? central(offsets) : meta;
  const cdStart = off;
  for (const e of entries) {
    const nb = new TextEncoder().encode(e.name);
    const c = new Uint8Array(46 + nb.length);
    const v = new DataView(c.buffer);
    v.setUint32(0, 0x02014b50, true);
    v.setUint16(10, e.method, true);
    v.setUint32(16, e.crc, true);
    v.setUint32(20, e.compressed, true);
    v.setUint32(24, e.size, true);
    v.setUint16(28, nb.length, true);
    v.setUint32(42, e.at, true);
    c.set(nb, 46);
    push(c);
  }
  const end = new Uint8Array(22);
  const v = new DataView(end.buffer);
  v.setUint32(0, 0x06054b50, true);
  v.setUint16(8, entries.length, true);
  v.setUint16(10, entries.length, true);
  v.setUint32(12, off - cdStart, true);
  v.setUint32(16, cdStart, true);
  push(end);
  const out = new Uint8Array(off);
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

describe('zip tricks', () => {
  const npyHeader = (shape: string) => {
    let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
    dict += ' '.repeat((64 - ((10 + dict.length + 1) % 64)) % 64) + '\n';
    const h = new Uint8Array(10 + dict.length);
    h.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    new DataView(h.buffer).setUint16(8, dict.length, true);
    h.set(new TextEncoder().encode(dict), 10);
    return h;
  };
  it('a zip bomb: a deflated member claiming more than deflate can expand is refused before inflating', async () => {
    const data = deflateSync(new Uint8Array(1 << 16));
    const z = await ZipArchive.open(bytesSource(rawZip([{ name: 'x.npy', data, method: 8, size: 0x7fffffff }]), 'bomb.npz'));
    await expect(z.read('x.npy')).rejects.toThrow(/bomb\.npz: .*claims 2147483647 bytes from \d+ compressed: corrupt header/);
  });
  it('a zip bomb in an .npz: an 8 MiB array of zeros in 8 KiB reads, its header does not lie', async () => {
    const body = new Uint8Array(8 << 20);
    const header = npyHeader('(2097152,)');
    const npy = new Uint8Array(header.length + body.length);
    npy.set(header);
    const npz = zipSync({ 'w.npy': [npy, { level: 9 }] });
    expect(npz.length).toBeLessThan(1 << 14);
    const z = await readNpz(bytesSource(npz, 'zeros.npz'));
    expect((await z.arrays.get('w')!.read()).length).toBe(8 << 20);
  });
  it('an .npy whose shape claims more than its member holds is refused before reading it', async () => {
    const header = npyHeader('(1000000000,)');
    const z = zipSync({ 'w.npy': [header, { level: 0 }] });
    await expect(readNpz(bytesSource(z, 'lie.npz'))).rejects.toThrow(/lie\.npz:w\.npy: array data for shape \[1000000000\] F32 needs 4000000\d+ bytes, the member has \d+/);
  });
  it('overlapping members (many central entries on one local header) each read alone, once', async () => {
    const data = new TextEncoder().encode('0123456789');
    const zip = rawZip([{ name: 'a', data }], ([at]) => Array.from({ length: 1000 }, (_, i) => ({ name: `m${i}`, at, method: 0, compressed: 10, size: 10, crc: 0 })));
    const z = await ZipArchive.open(bytesSource(zip, 'overlap.zip'));
    expect(z.names().length).toBe(1000);
    await expect(z.read('m7')).rejects.toThrow(/overlap\.zip: .*member 'm7' fails its CRC check/);
  });
  it('a member whose local header points into the central directory is refused', async () => {
    const zip = rawZip([{ name: 'a', data: new Uint8Array(4) }], () => [{ name: 'a', at: 34, method: 0, compressed: 4, size: 4, crc: 0 }]);
    const z = await ZipArchive.open(bytesSource(zip, 'inside.zip'));
    await expect(z.read('a')).rejects.toThrow(/inside\.zip: not a readable zip archive: local header of 'a' is missing/);
  });
  it('a nested archive (a zip stored as an .npy member, a .pth inside a .pth) is data, never opened', async () => {
    const inner = writeNpz([makeTensor('w', [4])]);
    const outer = zipSync({ 'evil.npy': [inner, { level: 0 }] });
    await expect(readNpz(bytesSource(outer, 'nested.npz'))).rejects.toThrow(/nested\.npz:evil\.npy: not an \.npy array \(bad magic\)/);
    const pth = zipSync({ 'archive/data.pkl': [writePth(small), { level: 0 }] });
    await expect(readPth(bytesSource(pth, 'nested.pth'))).rejects.toThrow(/nested\.pth:archive\/data\.pkl: (unsupported pickle opcode|persistent id)/);
  });
  it('an entry count the central directory cannot hold is refused', async () => {
    const zip = rawZip([{ name: 'a', data: new Uint8Array(4) }]).slice();
    const v = new DataView(zip.buffer);
    v.setUint16(zip.length - 22 + 10, 0xfffe, true);
    await expect(ZipArchive.open(bytesSource(zip, 'count.zip'))).rejects.toThrow(/count\.zip: .*65534 entries cannot fit a 47-byte central directory/);
  });
});

describe('the property itself', () => {
  let keep: Uint8Array | null = null;
  it('fails a reader that allocates more than its input justifies, throws a RangeError, or is slow', async () => {
    const seeds = [{ bytes: new Uint8Array(100), hot: [] }];
    await expect(checkOutcome('greedy', seeds, () => void (keep = new Uint8Array(300 << 20).fill(1)), { runs: 1, name: 'x' })).rejects.toThrow(/greedy: a \d+-byte input left \d+ bytes of ArrayBuffers allocated/);
    keep = null;
    await expect(checkOutcome('dataview', seeds, (b) => new DataView(b.buffer).getUint32(1 << 20), { runs: 1, name: 'x' })).rejects.toThrow(/dataview: threw RangeError/);
    await expect(checkOutcome('slow', seeds, () => new Promise((r) => setTimeout(r, 60)), { runs: 1, name: 'x', budgetMs: 20 })).rejects.toThrow(/slow: a case took \d+ ms/);
    await expect(checkOutcome('anonymous', seeds, () => { throw new Error('no name here'); }, { runs: 1, name: 'x.pth' })).rejects.toThrow(/does not name the file/);
    expect(keep).toBeNull();
  });
});

describe('regressions found by fuzzing and by review', () => {
  const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
  const pkl = (bytes: number[] | Uint8Array) => unpickle(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), { globals: torchGlobals, name: 'r.pkl' });

  it('(fuzzing) an error inside a persistent id (a missing storage member) names the file and position', async () => {
    const bytes = writePth([makeTensor('w', [4])]).slice();
    // rename the storage member so the pickle's persistent id points at nothing
    const at = [...bytes.keys()].filter((i) => bytes[i] === 0x2f && bytes[i + 1] === 0x30 && bytes[i - 1] === 0x61 && bytes[i - 2] === 0x74); // 'ta/0'
    for (const i of at) bytes[i + 1] = 0x39;
    await expect(readPth(bytesSource(bytes, 'missing.pth'))).rejects.toThrow(/^missing\.pth:archive\/data\.pkl: persistent id: storage '0' has no archive member archive\/data\/0 \(at byte \d+/);
    expect(() => unpickle(new Uint8Array([0x80, 2, 0x4e, 0x51, 0x2e]), { globals: torchGlobals, name: 'p.pkl', persistentLoad: () => { throw new Error('unknown persistent id None'); } })).toThrow(/^p\.pkl: persistent id: unknown persistent id None \(at byte 3/);
  });

  it('(review) APPENDS / ADDITEMS of 300k items: no RangeError from a spread call', () => {
    const n = 300_000;
    const list = new Uint8Array(2 + 2 + n + 2);
    list.set([0x80, 2, 0x5d, 0x28]);
    list.fill(0x4e, 4, 4 + n);
    list.set([0x65, 0x2e], 4 + n);
    expect((pkl(list) as unknown[]).length).toBe(n);
    const set = list.slice();
    set[2] = 0x8f; // EMPTY_SET
    set[4 + n] = 0x90; // ADDITEMS
    expect((pkl(set) as Set<unknown>).size).toBe(1);
  });

  it('(review) a text INT / LONG of a million digits is refused at once (BigInt parsing is quadratic)', () => {
    for (const op of ['I', 'L']) {
      const t0 = performance.now();
      expect(() => pkl([0x80, 2, ...ascii(op), ...new Array(1_000_000).fill(0x31), 0x0a, 0x2e])).toThrow(new RegExp(`r\\.pkl: ${op === 'I' ? 'INT' : 'LONG'} of 1000000 digits`));
      // a complexity guard, not a timing test: quadratic parsing of a million digits takes minutes,
      // so the bound has orders of magnitude of slack for a loaded machine (500 ms failed once under load)
      expect(performance.now() - t0).toBeLessThan(20_000);
    }
    expect(pkl([0x80, 2, ...ascii('L'), ...ascii('123456789012345678901234567890'), 0x4c, 0x0a, 0x2e])).toBe(123456789012345678901234567890n);
  });

  it('(review) a LONG4 of 4 MB decodes in linear time (was quadratic: 80 KB took 2.7 s)', () => {
    const n = 4_000_000;
    const b = new Uint8Array(7 + n + 1);
    b.set([0x80, 2, 0x8b]);
    new DataView(b.buffer).setInt32(3, n, true);
    b.fill(0x11, 7, 7 + n);
    b[7 + n] = 0x2e;
    const t0 = performance.now();
    expect(typeof pkl(b)).toBe('bigint');
    expect(performance.now() - t0).toBeLessThan(60_000); // complexity guard: quadratic would take hours at 4 MB
    expect(pkl([0x80, 2, 0x8b, 2, 0, 0, 0, 0xff, 0x7f, 0x2e])).toBe(0x7fff);
    expect(pkl([0x80, 2, 0x8a, 2, 0x00, 0x80, 0x2e])).toBe(-0x8000);
  });

  it('(review) a stride-0 view of 2^32 elements on a 1-element storage is refused before reading allocates 16 GB', async () => {
    const w = new PickleWriter(2);
    const bytes = collectPth(w.finish({ dict: [['w', { tensor: { storage: { key: '0', dtype: 'F32', numel: 1, data: () => new Uint8Array(4) }, offset: 0, shape: [65536, 65536], stride: [0, 0] } }]] }), new Uint8Array(4));
    await expect(readPth(bytesSource(bytes, 'expand.pth'))).rejects.toThrow(/expand\.pth:archive\/data\.pkl: .*4294967296 elements from a storage of 1: absurd broadcast/);
    // a small broadcast (expand of a bias) still reads
    const ok = collectPth(new PickleWriter(2).finish({ dict: [['b', { tensor: { storage: { key: '0', dtype: 'F32', numel: 1, data: () => new Uint8Array(4) }, offset: 0, shape: [3, 2], stride: [0, 0] } }]] }), new Float32Array([2.5]));
    const ck = await readPth(bytesSource(ok, 'bias.pth'));
    const sd = stateDict(ck.root);
    expect([...new Float32Array((await ck.record('b', sd.tensors.get('b')!).read()).slice().buffer)]).toEqual([2.5, 2.5, 2.5, 2.5, 2.5, 2.5]);
  });

  it('(review) a legacy file whose pickle claims a length past the end of the file reads no more of it', async () => {
    const real = torchFile('legacy_state_dict.pth').slice();
    // the first BINUNICODE (0x58) of the object pickle gets a length of 0x7fffff00
    const at = real.indexOf(0x58, 0x90);
    new DataView(real.buffer).setUint32(at + 1, 0x7fffff00, true);
    let read = 0;
    const size = 1 << 30; // looks like a 1 GiB file: zeros after the real bytes
    const src = { name: 'big.pth', size, async read(o: number, n: number) { read += n; const out = new Uint8Array(n); out.set(real.subarray(o, o + n)); return out; } };
    await expect(readPth(src)).rejects.toThrow(/^big\.pth \(legacy torch\.save, object\): a length of 2147483392 bytes passes the end of the pickle/);
    expect(read).toBeLessThan(1 << 17);
  });

  it('(review) an .npz member shorter than an npy v2 preamble is refused as a truncated header', async () => {
    const z = zipSync({ 'a.npy': [new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 9, 9]), { level: 0 }], 'b.npy': [writeNpy(makeTensor('b', [2])), { level: 0 }] });
    await expect(readNpz(bytesSource(z, 'short.npz'))).rejects.toThrow(/short\.npz:a\.npy: truncated \.npy header \(10 bytes\)/);
  });
});

/** A zip .pth of one pickle and one storage member. */
function collectPth(pickle: Uint8Array, storage: Uint8Array | Float32Array): Uint8Array {
  const bytes = storage instanceof Float32Array ? new Uint8Array(storage.buffer) : storage;
  return zipSync({ 'archive/data.pkl': [pickle, { level: 0 }], 'archive/data/0': [bytes, { level: 0 }] });
}
