// Checkpoint conversion: reads a .pth / .npz / .safetensors, finds its state dict (nested
// checkpoints, `module.` prefixes), maps it to the model's PyTorch state_dict keys (TransUNet's
// .npz through load_from()'s layout changes), checks every key and shape against the model's
// schema, and streams the tensors into a safetensors sink. All of it works on ByteSource /
// ByteSink, so the same code runs in Node (files) and in the browser (File, OPFS).
import { toFloat32, type DType } from './dtype.js';
import { readNpz } from './npz.js';
import { readPth, stateDict } from './pth.js';
import { derivedRecord, type TensorRecord } from './record.js';
import { readSafetensors, writeSafetensors, type WriteTarget } from './safetensors.js';
import { isOptionalKey, schemasFor, type ModelName, type Schema } from './schemas/index.js';
import { npzConvertedRecord, npzNotLoaded, npzTarget, npzTargetShape, npzUnusedKeys } from './schemas/transunet-npz.js';
import type { ByteSink, ByteSource } from './source.js';
import { ZipArchive } from './zip.js';

export type CheckpointFormat = 'pth' | 'npz' | 'safetensors';

/** Tells the format from the first bytes (and, for zips, the member names). */
export async function detectFormat(source: ByteSource): Promise<CheckpointFormat> {
  const head = await source.read(0, Math.min(16, source.size));
  if (ZipArchive.isZip(head)) {
    const z = await ZipArchive.open(source);
    const names = z.names();
    if (names.some((n) => n === 'data.pkl' || n.endsWith('/data.pkl'))) return 'pth';
    if (names.some((n) => n.endsWith('.npy'))) return 'npz';
    throw new Error(`${source.name}: a zip archive that is neither a torch.save checkpoint (no data.pkl) nor an .npz (no .npy members)`);
  }
  if (head.length >= 9 && head[8] === 0x7b /* { */ && head[6] === 0 && head[7] === 0) return 'safetensors';
  // Legacy torch files, other pickles and torch's ancient tar format: readPth reads or explains.
  if (head[0] === 0x80) return 'pth';
  if (source.size >= 263 && String.fromCharCode(...(await source.read(257, 5))) === 'ustar') return 'pth';
  throw new Error(`${source.name}: unrecognised checkpoint format (expected .pth, .npz or .safetensors)`);
}

export interface Checkpoint {
  format: CheckpointFormat;
  /** Tensors by key, unwrapped (state dict found, `module.` stripped); data not read yet. */
  tensors: Map<string, TensorRecord>;
  /** What unwrapping did, for messages. */
  notes: string[];
  /** safetensors __metadata__, or plain values next to the state dict (epoch, ...). */
  metadata: Record<string, string>;
}

export interface OpenOptions {
  /** For a .pth holding several dicts of tensors: choose the one these schemas fit best. */
  schemas?: Schema[];
}

/** Missing + unexpected + mis-shaped keys of `have` against `schema` (checkAgainst's count, without messages). */
function problemCount(schema: Schema, have: Map<string, { shape: number[] }>): number {
  let n = 0;
  for (const k of schema.tensors.keys()) if (!have.has(k) && !isOptionalKey(k)) n++;
  for (const [k, { shape }] of have) {
    const want = schema.tensors.get(k);
    if (!want) n++;
    else if (shape.join() !== want.join() && !(isOptionalKey(k) && shape.length <= 1 && shape.every((d) => d === 1))) n++;
  }
  return n;
}

/** Opens any supported checkpoint without mapping it to a model. */
export async function openCheckpoint(source: ByteSource, options: OpenOptions = {}): Promise<Checkpoint> {
  const format = await detectFormat(source);
  const notes: string[] = [];
  if (format === 'safetensors') {
    const f = await readSafetensors(source);
    return { format, tensors: new Map(f.tensors.map((t) => [t.name, t])), notes, metadata: f.metadata };
  }
  if (format === 'npz') {
    const z = await readNpz(source);
    return { format, tensors: z.arrays, notes, metadata: {} };
  }
  const ck = await readPth(source);
  const schemas = options.schemas;
  const score = schemas?.length ? (t: Map<string, { shape: number[] }>) => Math.min(...schemas.map((s) => problemCount(s, t))) : undefined;
  const sd = stateDict(ck.root, source.name, { score });
  if (ck.format === 'legacy') notes.push('legacy (pre-1.6) torch.save format');
  const among = sd.candidates > 1 ? ` (${score ? 'the best fit to the schema' : 'the largest'} of ${sd.candidates} dicts of tensors)` : '';
  if (sd.path.length) notes.push(`state dict found under ${sd.path.map((p) => `['${p}']`).join('')}${among}`);
  else if (among) notes.push(`state dict is the top level${among}`);
  if (sd.strippedPrefix) notes.push(`stripped the '${sd.strippedPrefix}' key prefix`);
  if (sd.skipped.length) notes.push(`ignored ${sd.skipped.length} non-tensor entries (${sd.skipped.slice(0, 3).join(', ')})`);
  return { format, tensors: new Map([...sd.tensors].map(([k, t]) => [k, ck.record(k, t)])), notes, metadata: sd.info };
}

export class SchemaMismatchError extends Error {
  constructor(
    readonly schema: Schema,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly misShaped: { key: string; got: number[]; expected: number[] | string }[],
    what: string,
  ) {
    const show = (xs: string[]) => xs.slice(0, 5).join(', ') + (xs.length > 5 ? `, ... (${xs.length - 5} more)` : '');
    const lines = [`${what} does not match the ${schema.model} schema '${schema.id}' (${schema.description}): ${missing.length} missing, ${unexpected.length} unexpected, ${misShaped.length} mis-shaped`];
    if (missing.length) lines.push(`  missing (${missing.length}): ${show(missing)}`);
    if (unexpected.length) lines.push(`  unexpected (${unexpected.length}): ${show(unexpected)}`);
    if (misShaped.length) lines.push(`  mis-shaped (${misShaped.length}): ${show(misShaped.map((m) => `${m.key} is [${m.got}], expected ${typeof m.expected === 'string' ? m.expected : `[${m.expected}]`}`))}`);
    super(lines.join('\n'));
  }
  get problems() {
    return this.missing.length + this.unexpected.length + this.misShaped.length;
  }
}

export interface PlanOptions {
  model: ModelName;
  /** Schemas to accept instead of the model's own (e.g. scaledSchema for small configurations). */
  schemas?: Schema[];
  /** Keep BatchNorm's `num_batches_tracked` counters (I64); dropped by default. */
  keepNumBatchesTracked?: boolean;
}

export interface ConversionPlan {
  format: CheckpointFormat;
  schema: Schema;
  /** Output tensors under the model's keys, in schema order. */
  records: TensorRecord[];
  notes: string[];
  metadata: Record<string, string>;
}

function checkAgainst(schema: Schema, have: Map<string, { shape: number[] | string }>, what: string, mayLack: (k: string) => boolean = () => false): SchemaMismatchError | null {
  const missing = [...schema.tensors.keys()].filter((k) => !have.has(k) && !isOptionalKey(k) && !mayLack(k));
  const unexpected = [...have.keys()].filter((k) => !schema.tensors.has(k));
  const misShaped: SchemaMismatchError['misShaped'] = [];
  for (const [k, { shape }] of have) {
    const want = schema.tensors.get(k);
    if (!want) continue;
    if (typeof shape === 'string') misShaped.push({ key: k, got: [], expected: shape });
    else if (shape.join() !== want.join() && !(isOptionalKey(k) && shape.length <= 1 && shape.every((d) => d === 1))) misShaped.push({ key: k, got: shape, expected: want });
  }
  const err = new SchemaMismatchError(schema, missing, unexpected, misShaped, what);
  return err.problems ? err : null;
}

/** Reads the checkpoint's structure (no tensor data), maps and checks it; throws SchemaMismatchError. */
export async function planConversion(source: ByteSource, options: PlanOptions): Promise<ConversionPlan> {
  const candidates = options.schemas ?? schemasFor(options.model);
  const ck = await openCheckpoint(source, { schemas: candidates });
  const notes = [...ck.notes];
  const what = source.name;

  if (ck.format === 'npz') {
    if (options.model !== 'transunet') throw new Error(`${what}: .npz checkpoints are read as TransUNet's ImageNet-21k encoder (R50+ViT-B_16.npz); use --model transunet`);
    let best: { err: SchemaMismatchError | null; schema: Schema; out: Map<string, TensorRecord>; unused: string[] } | null = null;
    for (const schema of candidates) {
      const have = new Map<string, { shape: number[] | string }>();
      const out = new Map<string, TensorRecord>();
      const unused: string[] = [];
      const unknown: string[] = [];
      for (const [name, rec] of ck.tensors) {
        const t = npzTarget(name);
        if (!t) {
          (npzUnusedKeys(name) ? unused : unknown).push(name);
          continue;
        }
        const shape = npzTargetShape(t.transform, rec.shape, schema.tensors.get(t.key));
        have.set(t.key, { shape });
        if (typeof shape !== 'string') out.set(t.key, npzConvertedRecord(rec, t.key, t.transform, shape));
      }
      let err = checkAgainst(schema, have, what, npzNotLoaded);
      if (unknown.length) err = new SchemaMismatchError(schema, err?.missing ?? [], [...unknown, ...(err?.unexpected ?? [])], err?.misShaped ?? [], what);
      if (!best || (best.err && (!err || err.problems < best.err.problems))) best = { err, schema, out, unused };
    }
    if (best!.err) throw best!.err;
    const { schema, out, unused } = best!;
    notes.push(`mapped ${out.size} npz arrays to TransUNet keys (load_from layout changes); decoder.* and segmentation_head.* are not in the npz (random init)`);
    if (unused.length) notes.push(`ignored ${unused.length} arrays TransUNet does not use (${unused.join(', ')})`);
    const records = [...schema.tensors.keys()].filter((k) => out.has(k)).map((k) => out.get(k)!);
    return { format: ck.format, schema, records, notes, metadata: ck.metadata };
  }

  const have = new Map([...ck.tensors].map(([k, r]) => [k, { shape: r.shape }]));
  let best: { err: SchemaMismatchError | null; schema: Schema } | null = null;
  for (const schema of candidates) {
    const err = checkAgainst(schema, have, what);
    if (!best || (best.err && (!err || err.problems < best.err.problems))) best = { err, schema };
    if (!err) break;
  }
  if (best!.err) throw best!.err;
  const schema = best!.schema;
  if (candidates.length > 1) notes.push(`matched schema '${schema.id}': ${schema.description}`);
  const keep = (k: string) => options.keepNumBatchesTracked || !isOptionalKey(k);
  const dropped = [...schema.tensors.keys()].filter((k) => ck.tensors.has(k) && !keep(k));
  if (dropped.length) notes.push(`dropped ${dropped.length} num_batches_tracked counters`);
  const records = [...schema.tensors.keys()].filter((k) => ck.tensors.has(k) && keep(k)).map((k) => ck.tensors.get(k)!);
  return { format: ck.format, schema, records, notes, metadata: ck.metadata };
}

export interface ConvertOptions extends PlanOptions {
  /** Storage dtype of float tensors in the output (default f32). */
  dtype?: 'f32' | 'f16';
  /** Called after each tensor is written. */
  onProgress?: (p: { bytes: number; totalBytes: number; name: string; index: number; count: number }) => void;
  /** Called once the plan is known, before any tensor data is read (e.g. to size a progress bar). */
  onPlan?: (plan: ConversionPlan) => void;
}

/** Output targets of a plan: float tensors in the chosen dtype, counters kept as they are. */
export function planTargets(plan: ConversionPlan, dtype: 'f32' | 'f16' = 'f32'): WriteTarget[] {
  const out: DType = dtype === 'f16' ? 'F16' : 'F32';
  return plan.records.map((r) => {
    if (isOptionalKey(r.name)) return { record: r };
    if (r.dtype === 'F32' || r.dtype === 'F16' || r.dtype === 'BF16') return { record: r, dtype: out };
    // F64, integer or bool storage for a weight: converted to float values first.
    return { record: derivedRecord(r.name, r.shape, async () => toFloat32(await r.read(), r.dtype)), dtype: out };
  });
}

export interface ConvertResult {
  plan: ConversionPlan;
  bytes: number;
}

/**
 * Converts a checkpoint to safetensors in `sink`. Nothing is written unless the whole schema
 * check passes; on any later error the sink is aborted (a file sink deletes its temp file).
 */
export async function convert(source: ByteSource, sink: ByteSink, options: ConvertOptions): Promise<ConvertResult> {
  let plan: ConversionPlan;
  try {
    plan = await planConversion(source, options);
  } catch (e) {
    await sink.abort().catch(() => {});
    throw e;
  }
  options.onPlan?.(plan);
  const metadata: Record<string, string> = {
    format: 'pt',
    producer: 'medseg convert',
    model: plan.schema.model,
    schema: plan.schema.id,
    source: source.name,
    source_format: plan.format,
    dtype: options.dtype ?? 'f32',
  };
  const { bytes } = await writeSafetensors(planTargets(plan, options.dtype), sink, { metadata, onProgress: options.onProgress });
  return { plan, bytes };
}
