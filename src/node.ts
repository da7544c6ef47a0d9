// medseg/node: the Node-only part of the API, kept out of the main entry so that browser bundles
// never see node:fs. File byte sources and sinks (src/weights/node-io.ts) and `load`, which is
// weights.load that also takes a file path (read by position, one tensor at a time).
import { load as loadAny, type LoadOptions, type LoadedWeights, type WeightSource } from './weights/load.js';
import { fileSource } from './weights/node-io.js';

export { fileSource, FileSink } from './weights/node-io.js';

const isUrlString = (s: string) => /^(https?|blob|data|file):/i.test(s) && !/^[a-zA-Z]:[\\/]/.test(s);

/** weights.load, where a string that is not a URL is a file path. */
export async function load(source: WeightSource, options: LoadOptions = {}): Promise<LoadedWeights> {
  if (typeof source !== 'string' || isUrlString(source)) return loadAny(source, options);
  const src = await fileSource(source);
  try {
    return await loadAny(src, options);
  } finally {
    await src.close();
  }
}
