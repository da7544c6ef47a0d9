// The weight-file readers on fixtures written by test/fixtures/make-checkpoints.ts: zip, pickle,
// .pth with every torch.save quirk, .npz/.npy, safetensors, and the f16/bf16 conversions; each
// compared value by value with what the generator wrote, and malformed inputs each giving a
// clear error. In memory only, so it runs in Node and in the browser.
import { describe, expect, it } from 'vitest';
import { zipSync } from 'fflate';
import { bytesSource, openCheckpoint, readPth, stateDict, readNpz, readNpy, readSafetensors, serializeSafetensors, writeSafetensors, unpickle, ZipArchive, toFloat32, numberToF16Bits, f16BitsToNumber, numberToBf16Bits, MemorySink } from '../../src/weights/index.js';
import { PthTensor, StorageRef, torchGlobals } from '../../src/weights/pth.js';
import { crc32 as fixtureCrc, makeTensor, PickleWriter, writeNpy, writeNpz, writePth, ZipWriter, collect, type FixtureDType, type FixtureTensor, type StorageMode } from '../fixtures/make-checkpoints.js';

/** Asserts the reader's f32 values equal the generator's exactly. */
function expectValues(got: Float32Array, t: FixtureTensor, what: string) {
  expect(got.length, `${what}: element count`).toBe(t.values.length);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== t.values[i]) expect.fail(`${what}: element ${i} is ${got[i]}, wrote ${t.values[i]}`);
  }
}

async function pthTensors(bytes: Uint8Array, name = 'fixture.pth') {
  const ck = await readPth(bytesSource(bytes, name));
  const sd = stateDict(ck.root, name);
  return { ck, sd, read: async (k: string) => { const r = ck.record(k, sd.tensors.get(k)!); return { r, v: toFloat32(await r.read(), r.dtype) }; } };
}

const generic: FixtureTensor[] = [
  makeTensor('conv.weight', [6, 3, 2, 2]),
  makeTensor('fc.weight', [5, 7]),
  makeTensor('fc.bias', [5]),
  makeTensor('half.weight', [4, 9], 'F16'),
  makeTensor('bf.weight', [3, 11], 'BF16'),
  makeTensor('dbl.weight', [2, 3, 4], 'F64'),
  makeTensor('bn.num_batches_tracked', [], 'I64'),
  makeTensor('idx.buffer', [13], 'I32'),
  makeTensor('mask.buffer', [2, 5], 'BOOL'),
  makeTensor('tied.a', [8, 3]),
  makeTensor('tied.b', [3, 8]),
  makeTensor('empty.weight', [0, 4]),
  makeTensor('half.bias', [4, 2], 'F16'),
  makeTensor('half.other', [2, 2], 'F16'),
];

describe('pth reader', () => {
  const cases: { name: string; modes: StorageMode[]; protocol: 2 | 4; wrap?: 'plain' | 'train' | 'model'; modulePrefix?: boolean; prefix?: string; metadata?: boolean; parameters?: boolean; legacy?: boolean }[] = [
    { name: 'contiguous, protocol 2, archive/', modes: ['own'], protocol: 2 },
    { name: 'shared storages with offsets', modes: ['shared'], protocol: 2, prefix: 'medsam_vit_b' },
    { name: 'non-contiguous (transposed) views', modes: ['transposed'], protocol: 2, metadata: true },
    { name: 'offset + padded-stride views', modes: ['padded', 'own', 'transposed'], protocol: 4 },
    { name: 'mixed, nested train checkpoint with module. prefix', modes: ['own', 'shared', 'padded', 'transposed'], protocol: 2, wrap: 'train', modulePrefix: true, metadata: true, parameters: true },
    { name: "{'model': sd, 'optimizer', 'epoch'} , protocol 4", modes: ['shared', 'transposed'], protocol: 4, wrap: 'model', parameters: true },
    { name: 'legacy format, protocol 2, every layout', modes: ['own', 'shared', 'padded', 'transposed'], protocol: 2, legacy: true, metadata: true },
    { name: 'legacy format, protocol 4, nested train checkpoint with module. prefix', modes: ['shared', 'transposed'], protocol: 4, legacy: true, wrap: 'train', modulePrefix: true, parameters: true },
  ];
  for (const c of cases) {
    it(`reads every dtype: ${c.name}`, async () => {
      const bytes = writePth(generic, { modes: c.modes, protocol: c.protocol, wrap: c.wrap, modulePrefix: c.modulePrefix, prefix: c.prefix, metadata: c.metadata, parameters: c.parameters, legacy: c.legacy });
      const { ck, sd, read } = await pthTensors(bytes);
      expect(ck.format).toBe(c.legacy ? 'legacy' : 'zip');
      expect(ck.prefix).toBe(c.legacy ? '' : (c.prefix ?? 'archive'));
      expect([...sd.tensors.keys()]).toEqual(generic.map((t) => t.name));
      expect(sd.strippedPrefix).toBe(c.modulePrefix ? 'module.' : '');
      expect(sd.path).toEqual(c.wrap === 'train' ? ['state_dict'] : c.wrap === 'model' ? ['model'] : []);
      for (const t of generic) {
        const { r, v } = await read(t.name);
        expect(r.shape, t.name).toEqual(t.shape);
        expect(r.dtype, t.name).toBe(t.dtype);
        expectValues(v, t, `${c.name}: ${t.name}`);
      }
      if (c.wrap === 'train') expect(sd.info).toMatchObject({ epoch: '42', best_prec1: '0.8125' });
    });
  }

  it('keeps _metadata as the state dict attribute', async () => {
    const { ck } = await pthTensors(writePth(generic.slice(0, 3), { metadata: true }));
    const meta = (ck.root as { attrs: Record<string, unknown> }).attrs._metadata as Map<string, Map<string, number>>;
    expect(meta.get('conv')?.get('version')).toBe(1);
  });

  it('finds storages whatever the archive folder is called', async () => {
    const bytes = writePth(generic.slice(0, 2), { prefix: 'epoch_149' });
    const { ck, read } = await pthTensors(bytes);
    expect(ck.prefix).toBe('epoch_149');
    expectValues((await read('fc.weight')).v, generic[1], 'fc.weight');
  });

  it('refuses a pickled model object, naming the global', async () => {
    const bytes = writePth(generic.slice(0, 1), { wrap: 'module-object' });
    await expect(readPth(bytesSource(bytes))).rejects.toThrow(/refusing global '__main__\.VNet'/);
  });

  it('names the part of a truncated legacy (non-zip) checkpoint that is cut', async () => {
    const legacy = new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02]);
    await expect(readPth(bytesSource(legacy, 'old.pth'))).rejects.toThrow(/^old\.pth \(legacy torch\.save, protocol version\): .*passes the end of the pickle/);
  });

  it('rejects a file that is not a zip', async () => {
    await expect(readPth(bytesSource(new TextEncoder().encode('hello, this is not a checkpoint')))).rejects.toThrow(/not a PyTorch checkpoint/);
  });

  it('rejects a truncated file', async () => {
    const bytes = writePth(generic.slice(0, 3));
    for (const cut of [bytes.length - 10, Math.floor(bytes.length / 2), 100]) {
      await expect(readPth(bytesSource(bytes.subarray(0, cut)))).rejects.toThrow(/zip|truncated/);
    }
  });

  it('detects a corrupted storage by its CRC', async () => {
    const t = makeTensor('w', [64]);
    const bytes = writePth([t]).slice();
    const z = await ZipArchive.open(bytesSource(bytes));
    const e = z.entry('archive/data/0');
    bytes[(await z.dataOffset(e)) + 17] ^= 0xff;
    const { read } = await pthTensors(bytes);
    await expect(read('w')).rejects.toThrow(/CRC/);
  });

  it('rejects a tensor whose view reaches past its storage', async () => {
    const w = new PickleWriter(2);
    const bytes = collect((out) => {
      const z = new ZipWriter(out);
      const pkl = w.finish({ dict: [['w', { tensor: { storage: { key: '0', dtype: 'F32', numel: 4, data: () => new Uint8Array(16) }, offset: 2, shape: [3], stride: [1] } }]], ordered: true });
      z.add('archive/data.pkl', pkl);
      z.add('archive/data/0', new Uint8Array(16));
      z.finish();
    });
    await expect(readPth(bytesSource(bytes))).rejects.toThrow(/reaches element 4 of a storage of 4/);
  });

  it('rejects an absurd shape', async () => {
    const bytes = collect((out) => {
      const z = new ZipWriter(out);
      const pkl = new PickleWriter(2).finish({ dict: [['w', { tensor: { storage: { key: '0', dtype: 'F32', numel: 4, data: () => new Uint8Array(16) }, offset: 0, shape: [100000, 100000, 1000], stride: [0, 0, 0] } }]] });
      z.add('archive/data.pkl', pkl);
      z.add('archive/data/0', new Uint8Array(16));
      z.finish();
    });
    await expect(readPth(bytesSource(bytes))).rejects.toThrow(/absurd shape/);
  });
});

describe('pickle interpreter', () => {
  const run = (bytes: number[]) => unpickle(new Uint8Array(bytes), { globals: torchGlobals, name: 'test.pkl' });
  const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

  it('refuses a forbidden global by GLOBAL and by STACK_GLOBAL, naming it', () => {
    expect(() => run([0x80, 2, 0x63, ...ascii('os\nsystem\n'), 0x55, 2, ...ascii('ls'), 0x85, 0x52, 0x2e])).toThrow(/refusing global 'os\.system'/);
    expect(() => run([0x80, 4, 0x8c, 8, ...ascii('builtins'), 0x8c, 4, ...ascii('eval'), 0x93, 0x2e])).toThrow(/refusing global 'builtins\.eval'/);
  });

  it('rejects an unknown opcode with its byte and position', () => {
    expect(() => run([0x80, 2, 0xff, 0x2e])).toThrow(/unsupported pickle opcode 0xff .*at byte 2/);
    expect(() => run([0x80, 2, 0x82, 1, 0x2e])).toThrow(/unsupported pickle opcode 0x82/); // EXT1
  });

  it('rejects lengths past the end, missing STOP and bad memo references', () => {
    expect(() => run([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x61])).toThrow(/passes the end/);
    expect(() => run([0x80, 2, 0x4e])).toThrow(/passes the end/);
    expect(() => run([0x80, 2, 0x68, 9, 0x2e])).toThrow(/memo entry 9/);
    expect(() => run([0x80, 2, 0x52, 0x2e])).toThrow(/stack underflow/);
  });

  it('reads the protocol 2 and 4 value types', () => {
    for (const protocol of [2, 4] as const) {
      const w = new PickleWriter(protocol);
      const v = unpickle(w.finish({ dict: [['a', [1, -2, 300, 70000, -70000, 2 ** 40]], ['b', { tuple: ['x', null, true, false] }], ['c', { float: 0.1 }], ['d', { bytes: new Uint8Array([0, 200, 255]) }]] }), { globals: torchGlobals }) as Map<string, unknown>;
      expect(v.get('a')).toEqual([1, -2, 300, 70000, -70000, 2 ** 40]);
      expect((v.get('b') as { items: unknown[] }).items).toEqual(['x', null, true, false]);
      expect(v.get('c')).toBe(0.1);
      expect([...(v.get('d') as Uint8Array)]).toEqual([0, 200, 255]);
    }
  });
});

describe('zip reader', () => {
  it('reads members written by fflate (stored and deflated) and checks CRCs', async () => {
    const a = new Uint8Array(5000).map((_, i) => (i * 7) & 0xff);
    const b = new TextEncoder().encode('hello '.repeat(100));
    const bytes = zipSync({ 'x/a.bin': [a, { level: 0 }], 'x/b.txt': [b, { level: 9 }] });
    const z = await ZipArchive.open(bytesSource(bytes));
    expect(z.names().sort()).toEqual(['x/a.bin', 'x/b.txt']);
    expect(z.entry('x/b.txt').method).toBe(8);
    expect(await z.read('x/a.bin')).toEqual(a);
    expect(await z.read('x/b.txt')).toEqual(b);
    expect(fixtureCrc(a)).toBe(z.entry('x/a.bin').crc);
  });

  it('rejects corrupt deflate data and impossible sizes', async () => {
    const b = new TextEncoder().encode('abcdefgh'.repeat(500));
    const bytes = zipSync({ 'b.txt': [b, { level: 9 }] }).slice();
    const z = await ZipArchive.open(bytesSource(bytes));
    const off = await z.dataOffset(z.entry('b.txt'));
    const bad = bytes.slice();
    for (let i = 0; i < 8; i++) bad[off + i] = 0xff;
    await expect((await ZipArchive.open(bytesSource(bad))).read('b.txt')).rejects.toThrow(/inflate|CRC/);
    const big = bytes.slice();
    const cd = big.length - 22 - (46 + 5);
    new DataView(big.buffer).setUint32(cd + 24, 0x7fffffff, true); // uncompressed size
    await expect((await ZipArchive.open(bytesSource(big))).read('b.txt')).rejects.toThrow(/corrupt header/);
  });
});

describe('npz / npy reader', () => {
  const arrays = [
    makeTensor('a/kernel', [3, 3, 4, 5]),
    makeTensor('b', [7, 6], 'F64'),
    makeTensor('c', [5, 4], 'F16'),
    makeTensor('d', [9], 'I64'),
    makeTensor('e', [2, 3, 4]),
    makeTensor('scalar', []),
  ];
  for (const compressed of [false, true]) {
    it(`reads ${compressed ? 'deflated (savez_compressed)' : 'stored (savez)'} members, npy v1/v2/v3, C and Fortran order`, async () => {
      const bytes = writeNpz(arrays, { compressed, fortranEvery: 2, versions: [1, 2, 3] });
      const z = await readNpz(bytesSource(bytes, 'fixture.npz'));
      expect([...z.arrays.keys()]).toEqual(arrays.map((t) => t.name));
      for (const t of arrays) {
        const r = z.arrays.get(t.name)!;
        expect(r.shape).toEqual(t.shape);
        expect(r.dtype).toBe(t.dtype);
        expectValues(toFloat32(await r.read(), r.dtype), t, `${t.name}`);
      }
    });
  }

  it('rejects a header length past the end, an absurd shape, a bad magic and an unsupported dtype', () => {
    const npy = writeNpy(makeTensor('x', [4, 4]));
    const longHeader = npy.slice();
    new DataView(longHeader.buffer).setUint16(8, 60000, true);
    expect(() => readNpy(longHeader)).toThrow(/header length 60000 passes the end/);
    expect(() => readNpy(npy.subarray(0, npy.length - 5))).toThrow(/passes the end of the file/);
    const latin1 = (b: Uint8Array) => String.fromCharCode(...b); // (TextDecoder's 'latin1' is windows-1252)
    const text = latin1(npy).replace("'shape': (4, 4)", "'shape': (99999, 99999999)");
    expect(() => readNpy(Uint8Array.from(text, (c) => c.charCodeAt(0)))).toThrow(/elements|passes the end/);
    const bad = npy.slice();
    bad[1] = 0;
    expect(() => readNpy(bad)).toThrow(/bad magic/);
    const obj = latin1(npy).replace("'<f4'", "'|O8'");
    expect(() => readNpy(Uint8Array.from(obj, (c) => c.charCodeAt(0)))).toThrow(/unsupported .npy dtype '\|O8'/);
  });
});

describe('safetensors', () => {
  it('round-trips F32, F16, BF16 and I64 with metadata', async () => {
    const ts = [makeTensor('a', [3, 5]), makeTensor('h', [7], 'F16'), makeTensor('b', [2, 2], 'BF16'), makeTensor('n', [], 'I64')];
    // Little-endian bytes written here (BF16 = the top half of the f32 bits: exact for fixture values).
    const enc = (t: FixtureTensor) => {
      const size = { F32: 4, F16: 2, BF16: 2, I64: 8 }[t.dtype as 'F32'];
      if (t.dtype === 'F16') return writeNpy(t).subarray(-t.values.length * 2);
      const out = new Uint8Array(t.values.length * size);
      const dv = new DataView(out.buffer);
      t.values.forEach((v, i) => {
        if (t.dtype === 'F32') dv.setFloat32(i * 4, v, true);
        else if (t.dtype === 'I64') dv.setBigInt64(i * 8, BigInt(v), true);
        else {
          const f = new DataView(new ArrayBuffer(4));
          f.setFloat32(0, v, true);
          dv.setUint16(i * 2, f.getUint16(2, true), true);
        }
      });
      return out;
    };
    const file = await serializeSafetensors(new Map(ts.map((t) => [t.name, { dtype: t.dtype as 'F32', shape: t.shape, data: enc(t) }])), { model: 'test', note: 'x' });
    expect(new DataView(file.buffer).getBigUint64(0, true) % 8n).toBe(0n);
    const f = await readSafetensors(file);
    expect(f.metadata).toEqual({ model: 'test', note: 'x' });
    for (const t of ts) {
      const e = f.tensors.find((x) => x.name === t.name)!;
      expect(e.dtype).toBe(t.dtype);
      expect(e.shape).toEqual(t.shape);
      expect(e.begin % (t.dtype === 'I64' ? 8 : t.dtype === 'F32' ? 4 : 2)).toBe(0);
      expectValues(toFloat32(await e.read(), e.dtype), t, t.name);
    }
  });

  it('rejects bad headers and offsets', async () => {
    const good = await serializeSafetensors(new Map([['a', { shape: [4], data: new Float32Array([1, 2, 3, 4]) }]]));
    const set = (b: Uint8Array, n: bigint) => (new DataView(b.buffer).setBigUint64(0, n, true), b);
    await expect(readSafetensors(set(good.slice(), 1n << 60n))).rejects.toThrow(/header length .* is absurd/);
    await expect(readSafetensors(set(good.slice(), BigInt(good.length)))).rejects.toThrow(/passes the end/);
    await expect(readSafetensors(good.subarray(0, good.length - 4))).rejects.toThrow(/passes the end of the file/);
    const hdr = (json: string) => {
      const j = new TextEncoder().encode(json);
      const b = new Uint8Array(8 + j.length + 16);
      set(b, BigInt(j.length)).set(j, 8);
      return b;
    };
    await expect(readSafetensors(hdr('{"a": '))).rejects.toThrow(/not valid JSON/);
    await expect(readSafetensors(hdr('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}'))).rejects.toThrow(/needs 8 bytes/);
    await expect(readSafetensors(hdr('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}'))).rejects.toThrow(/overlap/);
    await expect(readSafetensors(hdr('{"a":{"dtype":"Q8","shape":[2],"data_offsets":[0,2]}}'))).rejects.toThrow(/unsupported dtype/);
    await expect(readSafetensors(hdr('{"a":{"dtype":"F32","shape":[1e9,1e9],"data_offsets":[0,8]}}'))).rejects.toThrow(/elements/);
  });

  it('aborts the sink when a tensor fails to read', async () => {
    const sink = new MemorySink();
    let aborted = false;
    const orig = sink.abort.bind(sink);
    sink.abort = async () => ((aborted = true), orig());
    const failing = { name: 'x', dtype: 'F32' as const, shape: [2], read: async () => { throw new Error('disk gone'); } };
    await expect(writeSafetensors([{ record: failing }], sink)).rejects.toThrow(/disk gone/);
    expect(aborted).toBe(true);
    expect(sink.result).toBeNull();
  });
});

describe('f16 / bf16 conversion', () => {
  /** Nearest f16 by search over all finite f16 values, ties to even mantissa. */
  const allF16 = Array.from({ length: 0x7c00 }, (_, h) => ({ h, v: f16BitsToNumber(h) }));
  function nearestF16(x: number): number {
    const a = Math.abs(x);
    if (a >= 65520) return (x < 0 ? 0x8000 : 0) | 0x7c00;
    let best = allF16[0];
    for (const c of allF16) {
      const d = Math.abs(c.v - a) - Math.abs(best.v - a);
      if (d < 0 || (d === 0 && (c.h & 1) === 0)) best = c;
    }
    return (x < 0 ? 0x8000 : 0) | best.h;
  }
  it('rounds f32 to the nearest f16 (ties to even), subnormals and overflow included', () => {
    const xs = [0.1, -1 / 3, 65504, 65519, 65520, 1e-5, 6e-8, 2.98e-8, 3e-8, 1 + 2 ** -11, 1 + 3 * 2 ** -11, -2.5e-6, 1234.567, 0.000061];
    for (let i = 0; i < 40; i++) xs.push(Math.fround(Math.sin(i * 12.9898) * 10 ** ((i % 9) - 6)));
    for (const x of xs) {
      const f = Math.fround(x);
      expect(numberToF16Bits(f), `f16(${f})`).toBe(nearestF16(f));
    }
    expect(numberToF16Bits(Infinity)).toBe(0x7c00);
    expect(Number.isNaN(f16BitsToNumber(numberToF16Bits(NaN)))).toBe(true);
  });
  it('converts bf16 by rounding the f32 bits to nearest even', () => {
    const x = Math.fround(1 + 2 ** -8); // exactly halfway between two bf16 values: rounds to even (1.0)
    expect(numberToBf16Bits(x)).toBe(0x3f80);
    expect(numberToBf16Bits(Math.fround(1 + 3 * 2 ** -8))).toBe(0x3f82);
    const bytes = new Uint8Array(2);
    new DataView(bytes.buffer).setUint16(0, numberToBf16Bits(-2.5), true);
    expect(toFloat32(bytes, 'BF16')[0]).toBe(-2.5);
  });
});

// Unused-import guard for the fixture dtype type.
export type _T = FixtureDType;

describe('stateDict: which dict of tensors is the state dict', () => {
  const t = (n = 4) => new PthTensor(new StorageRef('0', 'F32', n, 'cpu'), 0, [n], [1], false);
  const dict = (entries: [unknown, unknown][]) => new Map<unknown, unknown>(entries);
  const sd = (prefix = '', keys = ['conv.weight', 'conv.bias', 'fc.weight']) => dict(keys.map((k) => [prefix + k, t()]));
  it('Lightning-style: state_dict with model. keys beside optimizer_states and lr_schedulers lists', () => {
    const adam = dict([['state', dict([[0, dict([['step', t(1)], ['exp_avg', t()], ['exp_avg_sq', t()]])], [1, dict([['exp_avg', t()], ['exp_avg_sq', t()], ['max_exp_avg_sq', t()], ['x', t()]])]])]]);
    const root = dict([['epoch', 3], ['state_dict', sd('model.')], ['optimizer_states', [adam]], ['lr_schedulers', [dict([['base_lrs', [0.1]]])]]]);
    const plain = stateDict(root);
    expect(plain.path).toEqual(['state_dict']);
    expect(plain.strippedPrefix).toBe(''); // without a schema only module. is stripped
    const wanted = new Set(['conv.weight', 'conv.bias', 'fc.weight']);
    const fit = stateDict(root, 'ck', { score: (m) => [...m.keys()].filter((k) => !wanted.has(k)).length + [...wanted].filter((k) => !m.has(k)).length });
    expect(fit.strippedPrefix).toBe('model.');
    expect([...fit.tensors.keys()]).toEqual([...wanted]);
  });
  it('optimizer state with more tensors than the model is never the default choice; EMA ties go to the conventional name', () => {
    const big = dict(Array.from({ length: 10 }, (_, i) => [`exp_avg${i}`, t()] as [string, unknown]));
    expect(stateDict(dict([['optimizer', dict([['state', big]])], ['net', sd()]])).path).toEqual(['net']);
    expect(stateDict(dict([['model_ema', sd()], ['model', sd()]])).path).toEqual(['model']);
    expect(stateDict(dict([['best_dice', t(1)], ['model', sd('module.')]])).strippedPrefix).toBe('module.');
  });
  it('searches lists and tuples, survives a dict that contains itself, and says what the top level holds when nothing is found', () => {
    expect(stateDict(dict([['models', [dict([['a', 1]]), sd()]]])).path).toEqual(['models', '[1]']);
    const loop = dict([['x', 1]]);
    loop.set('self', loop);
    expect(() => stateDict(loop, 'loop.pth')).toThrow(/loop\.pth: no state dict \(a dict of tensors\) found; top level holds: x, self/);
  });
});

describe('legacy torch.save variants', () => {
  it('storages named torch.cuda.FloatStorage (checkpoints saved from the GPU by torch < 0.4) read as CPU storages', async () => {
    const ts = [makeTensor('w', [3, 2]), makeTensor('h', [4], 'F16')];
    const bytes = writePth(ts, { legacy: true });
    const text = String.fromCharCode(...bytes).replace(/ctorch\nFloatStorage\n/g, 'ctorch.cuda\nFloatStorage\n').replace(/ctorch\nHalfStorage\n/g, 'ctorch.cuda\nHalfStorage\n');
    expect(text).toContain('torch.cuda\nFloatStorage');
    const { read } = await pthTensors(Uint8Array.from(text, (c) => c.charCodeAt(0)), 'gpu.pth');
    for (const t of ts) expectValues((await read(t.name)).v, t, t.name);
  });
  it('a tar-format torch.save (torch < 0.1.10) is refused by name', async () => {
    const tar = new Uint8Array(1024);
    tar.set(new TextEncoder().encode('sys_info'));
    tar.set(new TextEncoder().encode('ustar'), 257);
    await expect(readPth(bytesSource(tar, 'ancient.pth'))).rejects.toThrow(/ancient\.pth: a tar archive: the tar-format torch\.save of torch < 0\.1\.10 is not supported/);
    await expect(openCheckpoint(bytesSource(tar, 'ancient.pth'))).rejects.toThrow(/ancient\.pth: a tar archive/);
  });
});
