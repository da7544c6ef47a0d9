// PyTorch checkpoint reader, both torch.save formats: the zip format (the default since torch 1.6),
// whose archive `<prefix>/data.pkl` is unpickled with an allow-list of torch's rebuild functions and
// storage classes and whose storages are the members `<prefix>/data/<key>`, and the legacy format
// (torch < 1.6), pickles followed by raw storages. A storage is read only when a tensor needs it.
// Tensors are views (storage offset, sizes, strides) of their storage, which several may share.
// `stateDict()` finds the state dict inside nested checkpoints (by what matches the model's schema
// when a score is given: optimizer state, tensor-valued metrics and EMA copies sit beside it) and
// strips DataParallel's `module.` prefix.
import { itemSize, type DType } from './dtype.js';
import { baseGlobals, describe, PickleTruncatedError, PyGlobal, PyTuple, unpickle, unpickleAt, type Globals } from './pickle.js';
import { MAX_ELEMENTS, type TensorRecord } from './record.js';
import { checkRange, utf8, type ByteSource } from './source.js';
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

/** Bytes at the start of a legacy (pre-1.6, non-zip) torch.save file of pickle protocol 2: the magic 0x1950a86a20f9469cfc6c. */
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

/** Elements a view may have beyond its storage's (a stride-0 broadcast): 16M, 64 MB of f32. */
const MAX_BROADCAST = 1 << 24;

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
  // Stride-0 views (expand()) may hold more elements than their storage; reading one allocates them all.
  if (n > storage.numel && n > MAX_BROADCAST) throw new Error(`tensor of size [${shape}], stride [${strides}] has ${n} elements from a storage of ${storage.numel}: absurd broadcast`);
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
// torch.cuda.*Storage: how torch < 0.4 named the storages of a checkpoint saved from the GPU.
for (const [name, dtype] of Object.entries(storageTypes)) {
  for (const q of [`torch.${name}`, `torch.cuda.${name}`]) {
    torchGlobals[q] = { call: () => { throw new Error(`${q} cannot be called`); } };
    storageDTypes.set(q, dtype);
  }
}
for (const [name, dtype] of Object.entries(torchDtypes)) torchGlobals[`torch.${name}`] = { call: () => dtype };

export interface PthCheckpoint {
  /** The unpickled top-level object. */
  root: unknown;
  /** 'zip' (torch >= 1.6's default) or 'legacy' (pickles followed by raw storages). */
  format: 'zip' | 'legacy';
  /** The archive's folder name (`archive`, or the stem of the file torch.save wrote); '' for legacy files. */
  prefix: string;
  /** The zip archive (null for a legacy file). */
  archive: ZipArchive | null;
  record(name: string, t: PthTensor): TensorRecord;
}

/** Whether a file starts like a legacy torch.save: its first pickle (any protocol) is the magic number. */
export function isLegacyTorchFile(head: Uint8Array): boolean {
  if (LEGACY_MAGIC.every((b, i) => head[i] === b)) return true;
  if (head[0] !== 0x80) return false;
  try {
    return unpickleAt(head, 0, { globals: {} }).value === LEGACY_MAGIC_NUMBER;
  } catch {
    return false;
  }
}

/** Checks a persistent id's storage part: ('storage', StorageClass, key, location, numel, ...). */
function storageId(pid: unknown, length: number): { dtype: DType; key: string; location: string; numel: number; rest: unknown[] } {
  const t = pid instanceof PyTuple ? pid.items : null;
  if (!t || t[0] !== 'storage' || t.length < length) throw new Error(`unknown persistent id ${describe(pid)}`);
  const [, type, key, location, numel, ...rest] = t;
  const dtype = type instanceof PyGlobal ? storageDTypes.get(type.qualname) : undefined;
  if (!dtype) throw new Error(`persistent id names ${describe(type)}, not a storage class`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw new Error(`storage ${String(key)} has a bad size ${String(numel)}`);
  if (numel > MAX_ELEMENTS) throw new Error(`storage ${String(key)} claims ${numel} elements: absurd size`);
  return { dtype, key: String(key), location: String(location), numel, rest };
}

export async function readPth(source: ByteSource): Promise<PthCheckpoint> {
  const head = await source.read(0, Math.min(64, source.size));
  if (isLegacyTorchFile(head)) return readLegacyPth(source);
  if (source.size >= 263 && String.fromCharCode(...(await source.read(257, 5))) === 'ustar') {
    throw new Error(`${source.name}: a tar archive: the tar-format torch.save of torch < 0.1.10 is not supported; load it with that torch and save it again`);
  }
  if (!ZipArchive.isZip(head)) throw new Error(`${source.name}: not a PyTorch checkpoint (expected a torch.save zip archive or a legacy torch.save file, the file starts with ${hexBytes(head.subarray(0, 4))})`);
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
      const { dtype, key: k, location, numel } = storageId(pid, 5);
      let s = storages.get(k);
      if (!s) {
        const member = `${dir}data/${k}`;
        const e = archive.entries.get(member);
        if (!e) throw new Error(`storage '${k}' has no archive member ${member}`);
        if (e.size < numel * itemSize[dtype]) throw new Error(`storage '${k}' holds ${e.size} bytes, fewer than its ${numel} ${dtype} elements need`);
        s = new StorageRef(k, dtype, numel, location);
        storages.set(k, s);
      }
      return s;
    },
  });
  return { root, format: 'zip', prefix, archive, record: recorder((s) => archive.read(`${dir}data/${s.key}`)) };
}

/** Records reading through `bytesOf`; the last storage read is kept, so views and tied weights read it once. */
function recorder(bytesOf: (s: StorageRef) => Promise<Uint8Array>): PthCheckpoint['record'] {
  let cached: { key: string; bytes: Promise<Uint8Array> } | null = null;
  const storageBytes = (s: StorageRef) => {
    if (cached?.key !== s.key) cached = { key: s.key, bytes: bytesOf(s) };
    return cached.bytes;
  };
  return (name, t) => ({
    name,
    dtype: t.storage.dtype,
    shape: [...t.shape],
    async read() {
      return gather(await storageBytes(t.storage), t, itemSize[t.storage.dtype]);
    },
  });
}

/** The legacy format's first pickle, the magic number 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/**
 * torch.save's legacy format (torch < 1.6, or _use_new_zipfile_serialization=False): five pickles
 * one after another (magic number, protocol 1001, sys info {little_endian, type_sizes}, the object
 * with storages as persistent ids ('storage', class, key, location, numel, view), the list of
 * storage keys in file order), then each storage as an int64 element count and its raw bytes.
 * The pickles are read from a growing prefix of the file; storage bytes on demand.
 */
async function readLegacyPth(source: ByteSource): Promise<PthCheckpoint> {
  const what = source.name;
  let prefixLen = Math.min(source.size, 1 << 16);
  for (;;) {
    const bytes = await source.read(0, prefixLen);
    try {
      return await parseLegacy(source, bytes);
    } catch (e) {
      // A prefix too short: read more; a length past the end of the whole file: corrupt, read no more.
      if (!(e instanceof PickleTruncatedError) || prefixLen === source.size || e.needed > source.size) {
        throw e instanceof PickleTruncatedError ? new Error(e.message) : e;
      }
      prefixLen = Math.min(source.size, Math.max(prefixLen * 4, e.needed));
    }
  }
}

async function parseLegacy(source: ByteSource, bytes: Uint8Array): Promise<PthCheckpoint> {
  const what = source.name;
  const opts = (part: string) => ({ name: `${what} (legacy torch.save, ${part})`, globals: torchGlobals });
  const magic = unpickleAt(bytes, 0, opts('magic number'));
  if (magic.value !== LEGACY_MAGIC_NUMBER) throw new Error(`${what}: legacy torch.save magic number is wrong (${String(magic.value)})`);
  const protocol = unpickleAt(bytes, magic.end, opts('protocol version'));
  if (protocol.value !== LEGACY_PROTOCOL) throw new Error(`${what}: legacy torch.save protocol version ${String(protocol.value)} (expected ${LEGACY_PROTOCOL})`);
  const sys = unpickleAt(bytes, protocol.end, opts('sys info'));
  if (!(sys.value instanceof Map)) throw new Error(`${what}: legacy torch.save sys info is a ${describe(sys.value)}, not a dict`);
  if (sys.value.get('little_endian') !== true) throw new Error(`${what}: checkpoint was saved on a big-endian machine; only little-endian is supported`);
  const storages = new Map<string, StorageRef>();
  const obj = unpickleAt(bytes, sys.end, {
    ...opts('object'),
    persistentLoad(pid) {
      const { dtype, key, location, numel, rest } = storageId(pid, 6);
      if (rest[0] !== null && rest[0] !== undefined) throw new Error(`storage '${key}' is a storage view (torch < 0.4), which is not supported`);
      let s = storages.get(key);
      if (!s) storages.set(key, (s = new StorageRef(key, dtype, numel, location)));
      else if (s.dtype !== dtype || s.numel !== numel) throw new Error(`storage '${key}' is named twice with different types or sizes`);
      return s;
    },
  });
  const keys = unpickleAt(bytes, obj.end, opts('storage keys'));
  const list = Array.isArray(keys.value) ? keys.value : null;
  if (!list || !list.every((k) => typeof k === 'string')) throw new Error(`${what}: legacy torch.save storage key list is a ${describe(keys.value)}, not a list of strings`);
  // Storage records follow in the order of the key list: int64 element count, then the bytes.
  const offsets = new Map<string, number>();
  let at = keys.end;
  for (const k of list as string[]) {
    const s = storages.get(k);
    if (!s) throw new Error(`${what}: legacy torch.save lists storage '${k}' that no tensor uses`);
    if (offsets.has(k)) throw new Error(`${what}: legacy torch.save lists storage '${k}' twice`);
    checkRange(source, at, 8, `size of storage '${k}'`);
    const head = await source.read(at, 8);
    const n = new DataView(head.buffer, head.byteOffset, 8).getBigInt64(0, true);
    if (n !== BigInt(s.numel)) throw new Error(`${what}: storage '${k}' holds ${n} elements in the file, its tensors say ${s.numel}`);
    const len = s.numel * itemSize[s.dtype];
    checkRange(source, at + 8, len, `storage '${k}' (${s.numel} ${s.dtype})`);
    offsets.set(k, at + 8);
    at += 8 + len;
  }
  for (const k of storages.keys()) if (!offsets.has(k)) throw new Error(`${what}: storage '${k}' is used by a tensor but missing from the file's storage list`);
  return {
    root: obj.value,
    format: 'legacy',
    prefix: '',
    archive: null,
    record: recorder((s) => source.read(offsets.get(s.key)!, s.numel * itemSize[s.dtype])),
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
  /** How many dicts of tensors the checkpoint holds (optimizer state, metrics, EMA copies ...). */
  candidates: number;
}

const CONTAINER_KEYS = ['state_dict', 'model_state_dict', 'model', 'module', 'net', 'network', 'model_state', 'params', 'weights'];
/** Where a training checkpoint keeps what is not the model: never the default choice. */
const TRAINING_STATE = /^(optimi[sz]er|optimi[sz]ers|optimi[sz]er_state_dict|optimi[sz]er_states|optim|opt|scheduler|lr_scheduler|lr_schedulers|scaler|grad_scaler|amp)$/i;
const MAX_DEPTH = 6;

export interface StateDictCandidate {
  /** Keys from the checkpoint's top level to this dict ('[0]' for a list item). */
  path: string[];
  /** The dict's tensor entries, keys as saved. */
  tensors: Map<string, PthTensor>;
  /** Its entries that are not tensors. */
  skipped: string[];
}

/** Every dict holding tensors in a checkpoint (dicts, lists and tuples searched to depth 6). */
export function stateDictCandidates(root: unknown): StateDictCandidate[] {
  const out: StateDictCandidate[] = [];
  const seen = new Set<unknown>();
  const visit = (x: unknown, path: string[]) => {
    if (path.length > MAX_DEPTH || typeof x !== 'object' || x === null || seen.has(x)) return;
    seen.add(x);
    if (x instanceof Map) {
      const tensors = new Map<string, PthTensor>();
      const skipped: string[] = [];
      for (const [k, v] of x) {
        if (v instanceof PthTensor) tensors.set(String(k), v);
        else skipped.push(String(k));
      }
      if (tensors.size) out.push({ path, tensors, skipped });
      for (const [k, v] of x) visit(v, [...path, String(k)]);
    } else if (Array.isArray(x) || x instanceof PyTuple) {
      (Array.isArray(x) ? x : x.items).forEach((v, i) => visit(v, [...path, `[${i}]`]));
    }
  };
  visit(root, []);
  return out;
}

/** Key prefixes every key shares, component by component ('', 'model.', 'model.module.', ...). */
function sharedPrefixes(keys: string[]): string[] {
  const out = [''];
  for (let p = ''; keys.length; ) {
    const first = keys[0].slice(p.length).split('.')[0];
    const next = `${p}${first}.`;
    if (!first || !keys.every((k) => k.startsWith(next) && k.length > next.length)) break;
    out.push((p = next));
  }
  return out;
}

export interface StateDictOptions {
  /**
   * How badly a candidate state dict (keys after prefix stripping) fits what is wanted, e.g. the
   * number of missing, unexpected and mis-shaped keys against a model's schema; lowest wins, and
   * then any shared key prefix ('module.', 'model.') may be stripped, not only 'module.'.
   */
  score?: (tensors: Map<string, PthTensor>) => number;
}

/**
 * Finds the state dict inside a checkpoint. With `score`, the dict (and key prefix) that fits best;
 * without, the largest dict of tensors outside optimizer/scheduler state, conventional names
 * (state_dict, model, ...) first on ties, with DataParallel's `module.` stripped.
 */
export function stateDict(root: unknown, what = 'checkpoint', options: StateDictOptions = {}): FoundStateDict {
  const candidates = stateDictCandidates(root);
  if (!candidates.length) {
    const keys = root instanceof Map ? [...root.keys()].slice(0, 8).map(String).join(', ') : describe(root);
    throw new Error(`${what}: no state dict (a dict of tensors) found; top level holds: ${keys}`);
  }
  const training = (c: StateDictCandidate) => c.path.some((p) => TRAINING_STATE.test(p));
  const conventional = (c: StateDictCandidate) => c.path.every((p) => CONTAINER_KEYS.includes(p));
  const rank = (a: StateDictCandidate, b: StateDictCandidate) =>
    Number(training(a)) - Number(training(b)) || b.tensors.size - a.tensors.size || Number(conventional(b)) - Number(conventional(a)) || a.path.length - b.path.length;
  const strip = (t: Map<string, PthTensor>, prefix: string) => (prefix ? new Map([...t].map(([k, v]) => [k.slice(prefix.length), v] as const)) : t);
  let best: { c: StateDictCandidate; prefix: string; score: number } | null = null;
  if (options.score) {
    for (const c of [...candidates].sort(rank)) {
      for (const prefix of sharedPrefixes([...c.tensors.keys()])) {
        const score = options.score(strip(c.tensors, prefix));
        if (!best || score < best.score) best = { c, prefix, score };
      }
    }
  } else {
    const c = [...candidates].sort(rank)[0];
    const prefix = sharedPrefixes([...c.tensors.keys()]).filter((p) => /^(module\.)*$/.test(p)).pop()!;
    best = { c, prefix, score: 0 };
  }
  const { c, prefix } = best!;
  const info: Record<string, string> = {};
  if (root instanceof Map && c.path.length) {
    for (const [k, v] of root) if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') info[String(k)] = String(v);
  }
  return { tensors: strip(c.tensors, prefix), path: c.path, strippedPrefix: prefix, skipped: c.skipped, info, candidates: candidates.length };
}
