// safetensors, the runtime's weight format: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}} (padded
// with spaces to a multiple of 8), then the tensors' bytes back to back, offsets relative to
// the end of the header. Reading checks every length and offset against the file; writing
// streams tensor by tensor into a ByteSink, converting float tensors to the chosen dtype.
import { fromFloat32, isDType, itemSize, toFloat32, type DType } from './dtype.js';
import { byteLength, numelOf, type TensorRecord } from './record.js';
import { bytesSource, MemorySink, type ByteSink, type ByteSource } from './source.js';

/** The reference implementation refuses headers over 100 MB. */
const MAX_HEADER = 100_000_000;

export interface SafetensorsEntry extends TensorRecord {
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  tensors: SafetensorsEntry[];
  metadata: Record<string, string>;
  headerBytes: number;
}

export function parseSafetensorsHeader(headerJson: Uint8Array, fileSize: number, what = 'safetensors'): Omit<SafetensorsFile, 'tensors'> & { tensors: Omit<SafetensorsEntry, 'read'>[] } {
  const dataStart = 8 + headerJson.length;
  let h: unknown;
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerJson));
  } catch (e) {
    throw new Error(`${what}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw new Error(`${what}: header is not a JSON object`);
  const metadata: Record<string, string> = {};
  const tensors: Omit<SafetensorsEntry, 'read'>[] = [];
  for (const [name, v] of Object.entries(h as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null) throw new Error(`${what}: __metadata__ must be an object of strings`);
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') throw new Error(`${what}: __metadata__.${k} is not a string`);
        metadata[k] = s;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null || typeof e.dtype !== 'string' || !isDType(e.dtype)) throw new Error(`${what}: tensor '${name}' has an unsupported dtype ${JSON.stringify(e?.dtype)}`);
    if (!Array.isArray(e.shape)) throw new Error(`${what}: tensor '${name}' has no shape`);
    const shape = e.shape as number[];
    const n = numelOf(shape, `${what}: tensor '${name}'`);
    const off = e.data_offsets as number[];
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0) || off[1] < off[0]) throw new Error(`${what}: tensor '${name}' has bad data_offsets ${JSON.stringify(off)}`);
    if (off[1] - off[0] !== n * itemSize[e.dtype]) throw new Error(`${what}: tensor '${name}' [${shape}] ${e.dtype} needs ${n * itemSize[e.dtype]} bytes, its data_offsets span ${off[1] - off[0]}`);
    if (dataStart + off[1] > fileSize) throw new Error(`${what}: tensor '${name}' (bytes ${off[0]}..${off[1]}) passes the end of the file (${fileSize - dataStart} data bytes): truncated`);
    tensors.push({ name, dtype: e.dtype, shape: [...shape], begin: dataStart + off[0], end: dataStart + off[1] });
  }
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) throw new Error(`${what}: tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`);
  }
  return { tensors, metadata, headerBytes: dataStart };
}

/** Reads the header of a safetensors source; tensor data is read on demand. */
export async function readSafetensors(source: ByteSource | Uint8Array): Promise<SafetensorsFile> {
  const src = source instanceof Uint8Array ? bytesSource(source, 'safetensors') : source;
  if (src.size < 8) throw new Error(`${src.name}: too short for safetensors (${src.size} bytes)`);
  const n = safetensorsHeaderLength(await src.read(0, 8), src.size, src.name);
  const parsed = parseSafetensorsHeader(await src.read(8, n), src.size, src.name);
  return { ...parsed, tensors: parsed.tensors.map((t) => ({ ...t, read: () => src.read(t.begin, t.end - t.begin) })) };
}

/** Validates the 8-byte length prefix. */
export function safetensorsHeaderLength(prefix: Uint8Array, fileSize: number, what = 'safetensors'): number {
  const big = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (big > BigInt(MAX_HEADER)) throw new Error(`${what}: header length ${big} is absurd (corrupt, or not a safetensors file)`);
  const n = Number(big);
  if (8 + n > fileSize) throw new Error(`${what}: header length ${n} passes the end of the file (${fileSize} bytes): truncated`);
  return n;
}

export interface WriteTarget {
  record: TensorRecord;
  /** dtype written; floats convert, other dtypes must equal the record's. Default: the record's. */
  dtype?: DType;
}

export interface WriteOptions {
  metadata?: Record<string, string>;
  onProgress?: (p: { bytes: number; totalBytes: number; name: string; index: number; count: number }) => void;
}

const isFloat = (d: DType) => d === 'F32' || d === 'F16' || d === 'BF16' || d === 'F64';

/** Header bytes (length prefix included) and the total file size for these targets. */
export function safetensorsLayout(targets: WriteTarget[], metadata?: Record<string, string>) {
  // Wider dtypes first, so every tensor starts aligned to its element size.
  const order = targets.map((t, i) => ({ t, i, dtype: t.dtype ?? t.record.dtype })).sort((a, b) => itemSize[b.dtype] - itemSize[a.dtype] || a.i - b.i);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const { t, dtype } of order) {
    if (dtype !== t.record.dtype && !(isFloat(dtype) && dtype !== 'F64' && isFloat(t.record.dtype))) throw new Error(`safetensors: cannot write '${t.record.name}' (${t.record.dtype}) as ${dtype}`);
    const n = byteLength({ dtype, shape: t.record.shape });
    header[t.record.name] = { dtype, shape: t.record.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((new TextEncoder().encode(json).length + 8) % 8)) % 8);
  const jsonBytes = new TextEncoder().encode(json);
  const head = new Uint8Array(8 + jsonBytes.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  head.set(jsonBytes, 8);
  return { head, order, totalBytes: head.length + off };
}

/** Streams tensors into a sink as safetensors; on any error the sink is aborted and the error rethrown. */
export async function writeSafetensors(targets: WriteTarget[], sink: ByteSink, options: WriteOptions = {}): Promise<{ bytes: number }> {
  try {
    const names = new Set<string>();
    for (const t of targets) {
      if (names.has(t.record.name)) throw new Error(`safetensors: duplicate tensor name '${t.record.name}'`);
      names.add(t.record.name);
    }
    const { head, order, totalBytes } = safetensorsLayout(targets, options.metadata);
    await sink.write(head);
    let bytes = head.length;
    for (let i = 0; i < order.length; i++) {
      const { t, dtype } = order[i];
      const raw = await t.record.read();
      const expected = byteLength(t.record);
      if (raw.byteLength !== expected) throw new Error(`safetensors: '${t.record.name}' read ${raw.byteLength} bytes, expected ${expected}`);
      const out = dtype === t.record.dtype ? raw : fromFloat32(toFloat32(raw, t.record.dtype), dtype as 'F32' | 'F16' | 'BF16');
      await sink.write(out);
      bytes += out.byteLength;
      options.onProgress?.({ bytes, totalBytes, name: t.record.name, index: i + 1, count: order.length });
    }
    if (bytes !== totalBytes) throw new Error(`safetensors: wrote ${bytes} bytes, expected ${totalBytes}`);
    await sink.close();
    return { bytes };
  } catch (e) {
    await sink.abort().catch(() => {});
    throw e;
  }
}

/** In-memory convenience: name -> {dtype, shape, data (bytes of dtype, or f32 values)} to a safetensors buffer. */
export async function serializeSafetensors(
  tensors: Map<string, { dtype?: DType; shape: number[]; data: Uint8Array | Float32Array }>,
  metadata?: Record<string, string>,
): Promise<Uint8Array> {
  const sink = new MemorySink();
  const targets: WriteTarget[] = [...tensors].map(([name, t]) => {
    const srcDtype: DType = t.data instanceof Float32Array ? 'F32' : (t.dtype ?? 'F32');
    const bytes = t.data instanceof Float32Array ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) : t.data;
    return { record: { name, dtype: srcDtype, shape: t.shape, read: async () => bytes }, dtype: t.dtype ?? srcDtype };
  });
  await writeSafetensors(targets, sink, { metadata });
  return sink.result!;
}
