// PyTorch checkpoint reader (torch.save's zip format, the default since torch 1.6): the archive
// `<prefix>/data.pkl` is unpickled with an allow-list of torch's rebuild functions and storage
// classes; each storage is the member `<prefix>/data/<key>`, read only when a tensor needs it.
// Tensors are views (storage offset, sizes, strides) of their storage, which several may share.
// `stateDict()` finds the state dict inside nested checkpoints ({model|state_dict|...: sd}) and
// strips DataParallel's `module.` prefix.
import { itemSize, type DType } from './dtype.js';
import { baseGlobals, describe, PyGlobal, PyTuple, unpickle, type Globals } from './pickle.js';
import { MAX_ELEMENTS, type TensorRecord } from './record.js';
import { utf8, type ByteSource } from './source.js';
import { ZipArchive } from './zip.js';

const storageTypes: Record<string, DType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UntypedStorage: 'U8',
};

const torchDtypes: Record<string, DType> = {
  float32: 'F32', float: 'F32', float16: 'F16', half: 'F16', bfloat16: 'BF16', float64: 'F64', double: 'F64',
  int64: 'I64', long: 'I64', int32: 'I32', int: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};

/** Bytes at the start of a legacy (pre-1.6, non-zip) torch.save file: pickled magic 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
    readonly location: string,
  ) {}
}

export class PthTensor {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
  ) {}
}

function intList(x: unknown, what: string): number[] {
  const items = x instanceof PyTuple ? x.items : Array.isArray(x) ? x : null;
  if (!items || !items.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) throw new Error(`${what} must be a tuple of non-negative integers, got ${describe(x)}`);
  return items as number[];
}

function rebuildTensor(args: unknown[]): PthTensor {
  const [storage, offset, size, stride, requiresGrad] = args;
  if (!(storage instanceof StorageRef)) throw new Error(`expected a storage, got ${describe(storage)}`);
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new Error(`bad storage offset ${String(offset)}`);
  const shape = intList(size, 'size');
  const strides = intList(stride, 'stride');
  if (shape.length !== strides.length) throw new Error(`size [${shape}] and stride [${strides}] differ in length`);
  let n = 1;
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    n *= shape[i];
    last += (shape[i] - 1) * strides[i];
  }
  if (n > MAX_ELEMENTS) throw new Error(`tensor of size [${shape}] has ${n} elements: absurd shape`);
  if (n > 0 && last >= storage.numel) throw new Error(`tensor of size [${shape}], stride [${strides}], offset ${offset} reaches element ${last} of a storage of ${storage.numel}`);
  return new PthTensor(storage, offset, shape, strides, requiresGrad === true);
}

/** A numpy scalar (e.g. a best-metric value saved next to the weights) decoded to a number. */
class NumpyDType {
  byteorder = '<';
  constructor(readonly code: string) {}
  setState(state: unknown) {
    if (state instanceof PyTuple && typeof state.items[1] === 'string') this.byteorder = state.items[1];
  }
}

function numpyScalar(args: unknown[]): number | boolean | bigint {
  const [dt, raw] = args;
  if (!(dt instanceof NumpyDType) || !(raw instanceof Uint8Array)) throw new Error('numpy scalar needs (dtype, bytes)');
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const le = dt.byteorder !== '>';
  const code = dt.code.replace(/^[<>=|]/, '');
  const need = (n: number) => {
    if (raw.length < n) throw new Error(`numpy scalar ${code} has ${raw.length} bytes`);
  };
  switch (code) {
    case 'f8': return need(8), dv.getFloat64(0, le);
    case 'f4': return need(4), dv.getFloat32(0, le);
    case 'i8': return need(8), dv.getBigInt64(0, le);
    case 'i4': return need(4), dv.getInt32(0, le);
    case 'b1': return need(1), raw[0] !== 0;
    default: throw new Error(`numpy scalar of dtype '${code}' is not supported`);
  }
}

const storageDTypes = new Map<string, DType>();

export const torchGlobals: Globals = {
  ...baseGlobals,
  'torch._utils._rebuild_tensor': { call: rebuildTensor },
  'torch._utils._rebuild_tensor_v2': { call: rebuildTensor },
  'torch._utils._rebuild_parameter': { call: (a) => a[0] },
  'torch._utils._rebuild_parameter_with_state': { call: (a) => a[0] },
  'torch._tensor._rebuild_from_type_v2': {
    call: ([func, type, args]) => {
      if (!(func instanceof PyGlobal)) throw new Error(`expected a rebuild function, got ${describe(func)}`);
      if (!(type instanceof PyGlobal)) throw new Error(`expected a tensor type, got ${describe(type)}`);
      return func.impl.call(args instanceof PyTuple ? args.items : []);
    },
  },
  'torch.Tensor': { call: () => { throw new Error('torch.Tensor cannot be constructed directly'); } },
  'torch.nn.parameter.Parameter': { call: (a) => a[0] },
  'torch.Size': { call: (a) => a[0] },
  'torch.device': { call: (a) => String(a[0]) + (a.length > 1 && a[1] !== null ? `:${a[1]}` : '') },
  'numpy.dtype': { call: (a) => new NumpyDType(String(a[0])) },
  'numpy.core.multiarray.scalar': { call: numpyScalar },
  'numpy._core.multiarray.scalar': { call: numpyScalar },
};
for (const [name, dtype] of Object.entries(storageTypes)) {
  torchGlobals[`torch.${name}`] = { call: () => { throw new Error(`torch.${name} cannot be called`); } };
  storageDTypes.set(`torch.${name}`, dtype);
}
for (const [name, dtype] of Object.entries(torchDtypes)) torchGlobals[`torch.${name}`] = { call: () => dtype };

export interface PthCheckpoint {
  /** The unpickled top-level object. */
  root: unknown;
  /** The archive's folder name (`archive`, or the stem of the file torch.save wrote). */
  prefix: string;
  archive: ZipArchive;
  record(name: string, t: PthTensor): TensorRecord;
}

export function isLegacyTorchFile(head: Uint8Array): boolean {
  return LEGACY_MAGIC.every((b, i) => head[i] === b);
}

export async function readPth(source: ByteSource): Promise<PthCheckpoint> {
  const head = await source.read(0, Math.min(16, source.size));
  if (isLegacyTorchFile(head)) {
    throw new Error(
      `${source.name}: this is a legacy (pre-1.6, non-zip) torch.save file, which is not supported. Re-save it with torch >= 1.6 in the default zip format: ` +
        `\`sd = torch.load(path, map_location='cpu'); torch.save(sd, 'new.pth')\` (do not pass _use_new_zipfile_serialization=False).`,
    );
  }
  if (!ZipArchive.isZip(head)) throw new Error(`${source.name}: not a PyTorch checkpoint (expected a torch.save zip archive, the file starts with ${hexBytes(head.subarray(0, 4))})`);
  const archive = await ZipArchive.open(source);
  const pkls = archive.names().filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pkls.length === 0) throw new Error(`${source.name}: zip archive has no data.pkl: not a torch.save checkpoint (members: ${archive.names().slice(0, 5).join(', ')})`);
  pkls.sort((a, b) => a.length - b.length);
  const pkl = pkls[0];
  const prefix = pkl.slice(0, -'data.pkl'.length).replace(/\/$/, '');
  const dir = prefix ? `${prefix}/` : '';
  if (archive.entries.has(`${dir}byteorder`)) {
    const order = utf8.decode(await archive.read(`${dir}byteorder`)).trim();
    if (order !== 'little') throw new Error(`${source.name}: checkpoint was saved with byteorder '${order}'; only little-endian is supported`);
  }
  const storages = new Map<string, StorageRef>();
  const root = unpickle(await archive.read(pkl), {
    name: `${source.name}:${pkl}`,
    globals: torchGlobals,
    persistentLoad(pid) {
      const t = pid instanceof PyTuple ? pid.items : null;
      if (!t || t[0] !== 'storage' || t.length < 5) throw new Error(`unknown persistent id ${describe(pid)}`);
      const [, type, key, location, numel] = t;
      const dtype = type instanceof PyGlobal ? storageDTypes.get(type.qualname) : undefined;
      if (!dtype) throw new Error(`persistent id names ${describe(type)}, not a storage class`);
      if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw new Error(`storage ${String(key)} has a bad size ${String(numel)}`);
      const k = String(key);
      let s = storages.get(k);
      if (!s) {
        const member = `${dir}data/${k}`;
        const e = archive.entries.get(member);
        if (!e) throw new Error(`storage '${k}' has no archive member ${member}`);
        if (e.size < numel * itemSize[dtype]) throw new Error(`storage '${k}' holds ${e.size} bytes, fewer than its ${numel} ${dtype} elements need`);
        s = new StorageRef(k, dtype, numel, String(location));
        storages.set(k, s);
      }
      return s;
    },
  });

  // The last storage read is kept, so tensors sharing one storage (views, tied weights) read it once.
  let cached: { key: string; bytes: Promise<Uint8Array> } | null = null;
  const storageBytes = (s: StorageRef) => {
    if (cached?.key !== s.key) cached = { key: s.key, bytes: archive.read(`${dir}data/${s.key}`) };
    return cached.bytes;
  };
  return {
    root,
    prefix,
    archive,
    record(name, t) {
      return {
        name,
        dtype: t.storage.dtype,
        shape: [...t.shape],
        async read() {
          return gather(await storageBytes(t.storage), t, itemSize[t.storage.dtype]);
        },
      };
    },
  };
}

/** Copies a strided view out of its storage into a new contiguous buffer. */
function gather(storage: Uint8Array, t: PthTensor, size: number): Uint8Array {
  const nd = t.shape.length;
  let n = 1;
  for (const d of t.shape) n *= d;
  let contiguous = true;
  for (let i = nd - 1, expect = 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== expect) contiguous = false;
    expect *= t.shape[i];
  }
  if (contiguous) return storage.slice(t.offset * size, (t.offset + n) * size);
  const out = new Uint8Array(n * size);
  if (n === 0) return out;
  const idx = new Array<number>(nd).fill(0);
  let src = t.offset;
  for (let o = 0; o < n; o++) {
    out.set(storage.subarray(src * size, src * size + size), o * size);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      src += t.stride[d];
      if (idx[d] < t.shape[d]) break;
      src -= t.stride[d] * t.shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

const hexBytes = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

export interface FoundStateDict {
  tensors: Map<string, PthTensor>;
  /** Where the state dict sat in the checkpoint, e.g. `['state_dict']`; [] for the top level. */
  path: string[];
  /** The prefix removed from every key (`module.`), or ''. */
  strippedPrefix: string;
  /** Entries of the state dict that are not tensors (ignored). */
  skipped: string[];
  /** Other top-level entries of a nested checkpoint (epoch, best metric, ...), when they are plain values. */
  info: Record<string, string>;
}

const CONTAINER_KEYS = ['state_dict', 'model_state_dict', 'model', 'module', 'net', 'network', 'model_state', 'params', 'weights'];

/** Finds the state dict inside a checkpoint: the top-level dict, or the one under a conventional key. */
export function stateDict(root: unknown, what = 'checkpoint'): FoundStateDict {
  const countTensors = (d: unknown) => (d instanceof Map ? [...d.values()].filter((v) => v instanceof PthTensor).length : 0);
  let d = root;
  const path: string[] = [];
  const info: Record<string, string> = {};
  for (let depth = 0; depth < 4 && d instanceof Map && countTensors(d) === 0; depth++) {
    const key = CONTAINER_KEYS.find((k) => countTensors((d as Map<unknown, unknown>).get(k)) > 0) ?? CONTAINER_KEYS.find((k) => (d as Map<unknown, unknown>).get(k) instanceof Map);
    if (key === undefined) break;
    if (depth === 0) {
      for (const [k, v] of d) if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') info[String(k)] = String(v);
    }
    path.push(key);
    d = d.get(key);
  }
  if (!(d instanceof Map) || countTensors(d) === 0) {
    const keys = root instanceof Map ? [...root.keys()].slice(0, 8).map(String).join(', ') : describe(root);
    throw new Error(`${what}: no state dict (a dict of tensors) found; top level holds: ${keys}`);
  }
  const tensors = new Map<string, PthTensor>();
  const skipped: string[] = [];
  for (const [k, v] of d) {
    if (v instanceof PthTensor) tensors.set(String(k), v);
    else skipped.push(String(k));
  }
  let strippedPrefix = '';
  for (const p of ['module.']) {
    while ([...tensors.keys()].every((k) => k.startsWith(strippedPrefix + p))) strippedPrefix += p;
  }
  const out = strippedPrefix ? new Map([...tensors].map(([k, v]) => [k.slice(strippedPrefix.length), v] as const)) : tensors;
  return { tensors: out, path, strippedPrefix, skipped, info };
}
