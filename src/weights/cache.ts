// Browser-side conversion with a cache: a dropped .pth / .npz is converted to safetensors
// straight into the Origin Private File System (no second in-memory copy; the writable commits
// atomically on close), so the next visit loads the converted file at once. Without OPFS the
// result is kept in memory for this page only.
import { convert, type ConvertOptions, type ConversionPlan } from './convert.js';
import { blobSource, MemorySink, type ByteSink } from './source.js';

const DIR = 'medseg-weights';

export interface CachedResult {
  /** The converted safetensors file; pass it to weights.load(). */
  file: Blob;
  fromCache: boolean;
  plan?: ConversionPlan;
}

/** The cache entry name: the input's name, size and date, the model and the output dtype. */
export function cacheKey(input: Blob, options: Pick<ConvertOptions, 'model' | 'dtype'>): string {
  const f = input as File;
  const base = `${f.name ?? 'blob'}-${input.size}-${f.lastModified ?? 0}-${options.model}-${options.dtype ?? 'f32'}`;
  return `${base.replace(/[^A-Za-z0-9._-]/g, '_')}.safetensors`;
}

async function opfsDir(): Promise<FileSystemDirectoryHandle | null> {
  try {
    const storage = (globalThis as { navigator?: Navigator }).navigator?.storage;
    if (!storage?.getDirectory) return null;
    return await (await storage.getDirectory()).getDirectoryHandle(DIR, { create: true });
  } catch {
    return null;
  }
}

/** Converts `input` (a dropped File) unless a converted copy is cached; returns the safetensors Blob. */
export async function convertCached(input: Blob, options: ConvertOptions): Promise<CachedResult> {
  const key = cacheKey(input, options);
  const dir = await opfsDir();
  if (dir) {
    try {
      const existing = await dir.getFileHandle(key);
      const file = await existing.getFile();
      if (file.size > 0) return { file, fromCache: true };
    } catch {
      // not cached yet
    }
    const handle = await dir.getFileHandle(key, { create: true });
    const writable = await (handle as FileSystemFileHandle & { createWritable(): Promise<FileSystemWritableFileStream> }).createWritable();
    const sink: ByteSink = {
      write: (chunk) => writable.write(chunk as BufferSource),
      close: () => writable.close(),
      abort: async () => {
        await writable.abort().catch(() => {});
        await dir.removeEntry(key).catch(() => {});
      },
    };
    const { plan } = await convert(blobSource(input), sink, options);
    return { file: await handle.getFile(), fromCache: false, plan };
  }
  const sink = new MemorySink();
  const { plan } = await convert(blobSource(input), sink, options);
  return { file: new Blob([sink.result! as BlobPart]), fromCache: false, plan };
}

/** Deletes every cached conversion. */
export async function clearCache(): Promise<void> {
  const storage = (globalThis as { navigator?: Navigator }).navigator?.storage;
  if (!storage?.getDirectory) return;
  await (await storage.getDirectory()).removeEntry(DIR, { recursive: true }).catch(() => {});
}
