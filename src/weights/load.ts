// weights.load(): reads a checkpoint from a URL, a File/Blob, bytes or a ByteSource (a file path in
// Node: `load` from 'medseg/node', src/node.ts, which keeps node:fs out of this entry) and
// uploads it to the GPU tensor by tensor, so at most one tensor's bytes are held on the CPU at a
// time (a 375 MB file never needs a second full copy). safetensors from a URL is consumed as a
// stream in file order; .pth / .npz need random access (a URL is first gathered into a Blob).
// With `model`, a .pth / .npz is mapped and checked against the model's schema on the way.
import { runtime } from '../gpu/runtime.js';
import { tensor, type Tensor } from '../tensor.js';
import { toFloat32 } from './dtype.js';
import { openCheckpoint, planConversion, type CheckpointFormat } from './convert.js';
import { byteLength, type TensorRecord } from './record.js';
import { parseSafetensorsHeader, safetensorsHeaderLength, type SafetensorsEntry } from './safetensors.js';
import type { ModelName, Schema } from './schemas/index.js';
import { blobSource, bytesSource, type ByteSource } from './source.js';

export type WeightSource = string | URL | Blob | Uint8Array | ArrayBuffer | ByteSource;

export interface LoadProgress {
  loadedBytes: number;
  totalBytes: number;
  /** tensors uploaded so far / in all */
  index: number;
  count: number;
  name: string;
}

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /** Map and check a .pth / .npz against this model's schema (see convert). */
  model?: ModelName;
  schemas?: Schema[];
  /** Only these keys (default: all). */
  filter?: (key: string) => boolean;
  fetchInit?: RequestInit;
}

export interface LoadedWeights {
  tensors: Map<string, Tensor>;
  /** safetensors __metadata__ (for converted files: model, schema, source, dtype). */
  metadata: Record<string, string>;
  format: CheckpointFormat;
  notes: string[];
}

const isUrlString = (s: string) => /^(https?|blob|data|file):/i.test(s) && !/^[a-zA-Z]:[\\/]/.test(s);

export async function load(source: WeightSource, options: LoadOptions = {}): Promise<LoadedWeights> {
  if (source instanceof URL || (typeof source === 'string' && (isUrlString(source) || typeof process === 'undefined'))) {
    return loadUrl(String(source), options);
  }
  if (typeof source === 'string') {
    throw new Error(`weights.load('${source}'): a file path needs Node's file system; use load() from 'medseg/node', or pass a URL, a Blob or bytes`);
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) return loadSource(blobSource(source), options);
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return loadSource(bytesSource(source), options);
  return loadSource(source as ByteSource, options);
}

async function loadSource(src: ByteSource, options: LoadOptions): Promise<LoadedWeights> {
  let records: TensorRecord[];
  let metadata: Record<string, string>;
  let format: CheckpointFormat;
  let notes: string[];
  if (options.model) {
    const plan = await planConversion(src, { model: options.model, schemas: options.schemas });
    ({ records, metadata, format, notes } = plan);
    notes = [...notes, `schema '${plan.schema.id}'`];
  } else {
    const ck = await openCheckpoint(src);
    ({ metadata, format, notes } = ck);
    records = [...ck.tensors.values()];
    // safetensors: read in file order.
    if (format === 'safetensors') records.sort((a, b) => (a as SafetensorsEntry).begin - (b as SafetensorsEntry).begin);
  }
  if (options.filter) records = records.filter((r) => options.filter!(r.name));
  const totalBytes = records.reduce((a, r) => a + byteLength(r), 0);
  const tensors = new Map<string, Tensor>();
  let loadedBytes = 0;
  try {
    for (const r of records) {
      const bytes = await r.read();
      tensors.set(r.name, upload(r, bytes));
      loadedBytes += bytes.byteLength;
      options.onProgress?.({ loadedBytes, totalBytes, index: tensors.size, count: records.length, name: r.name });
    }
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  }
  return { tensors, metadata, format, notes };
}

function upload(r: { name: string; dtype: TensorRecord['dtype']; shape: number[] }, bytes: Uint8Array): Tensor {
  const t = tensor(toFloat32(bytes, r.dtype), r.shape);
  t.name = r.name;
  // Submit now so the staging copy is released before the next tensor is read.
  runtime().flush();
  return t;
}

/** Sequential reader over a fetch body. */
class StreamReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  position = 0;
  constructor(private reader: ReadableStreamDefaultReader<Uint8Array>) {}
  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      const { done, value } = await this.reader.read();
      if (done) return false;
      this.chunks.push(value);
      this.buffered += value.byteLength;
    }
    return true;
  }
  async read(n: number): Promise<Uint8Array> {
    if (!(await this.fill(n))) throw new Error(`stream ended ${n - this.buffered} bytes early at offset ${this.position + this.buffered}: truncated`);
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0];
      const take = Math.min(c.byteLength, n - o);
      out.set(c.subarray(0, take), o);
      o += take;
      if (take === c.byteLength) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    this.buffered -= n;
    this.position += n;
    return out;
  }
  async rest(): Promise<Blob> {
    const parts: BlobPart[] = this.chunks.map((c) => c as BlobPart);
    for (;;) {
      const { done, value } = await this.reader.read();
      if (done) break;
      parts.push(value as BlobPart);
    }
    return new Blob(parts);
  }
}

async function loadUrl(url: string, options: LoadOptions): Promise<LoadedWeights> {
  const res = await fetch(url, options.fetchInit);
  if (!res.ok || !res.body) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
  const size = Number(res.headers.get('content-length') ?? NaN);
  const reader = new StreamReader(res.body.getReader());
  const prefix = await reader.read(Math.min(9, Number.isFinite(size) ? size : 9));
  const looksSafetensors = prefix.length === 9 && prefix[8] === 0x7b && prefix[6] === 0 && prefix[7] === 0;
  if (!looksSafetensors || options.model) {
    // .pth / .npz need random access: gather the body (a Blob, which browsers may keep on disk).
    const blob = new Blob([prefix as BlobPart, await reader.rest()]);
    return loadSource(blobSource(blob, url.split('/').pop() || url), options);
  }
  const fileSize = Number.isFinite(size) ? size : Number.MAX_SAFE_INTEGER;
  const n = safetensorsHeaderLength(prefix, fileSize, url);
  const header = new Uint8Array(n);
  header[0] = prefix[8];
  header.set(await reader.read(n - 1), 1);
  const parsed = parseSafetensorsHeader(header, fileSize, url);
  let entries = [...parsed.tensors].sort((a, b) => a.begin - b.begin);
  if (options.filter) entries = entries.filter((e) => options.filter!(e.name));
  const totalBytes = entries.reduce((a, e) => a + (e.end - e.begin), 0);
  const tensors = new Map<string, Tensor>();
  let loadedBytes = 0;
  try {
    for (const e of entries) {
      while (reader.position < e.begin) await reader.read(Math.min(e.begin - reader.position, 1 << 24));
      const bytes = await reader.read(e.end - e.begin);
      tensors.set(e.name, upload(e, bytes));
      loadedBytes += bytes.byteLength;
      options.onProgress?.({ loadedBytes, totalBytes, index: tensors.size, count: entries.length, name: e.name });
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  return { tensors, metadata: parsed.metadata, format: 'safetensors', notes: [] };
}
