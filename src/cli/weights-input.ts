// A weights file given to segment (--weights) or train (--resume), read and checked before the GPU
// opens: a .safetensors file must have a valid header ("not a valid safetensors file: ..."), a
// .pth / other checkpoint must match a V-Net schema. The tensors are uploaded later (load(bytes)).
import { bytesSource } from '../weights/source.js';
import { readSafetensors } from '../weights/safetensors.js';
import { planConversion } from '../weights/convert.js';
import { CliError } from './args.js';
import { readInput } from './files.js';

export interface WeightsInput {
  path: string;
  bytes: Uint8Array;
  /** true for .safetensors (loaded as they are), false for checkpoints mapped to V-Net's keys */
  safetensors: boolean;
  metadata: Record<string, string>;
}

export async function readWeightsInput(path: string, what: string): Promise<WeightsInput> {
  const bytes = readInput(path, what);
  const drop = (m: string) => (m.startsWith(`${path}: `) ? m.slice(path.length + 2) : m);
  if (/\.safetensors$/i.test(path)) {
    try {
      const f = await readSafetensors(bytesSource(bytes, path));
      return { path, bytes, safetensors: true, metadata: f.metadata };
    } catch (e) {
      throw new CliError(`${what} ${path}: not a valid safetensors file: ${drop((e as Error).message)}`);
    }
  }
  try {
    const plan = await planConversion(bytesSource(bytes, path), { model: 'vnet' });
    return { path, bytes, safetensors: false, metadata: plan.metadata };
  } catch (e) {
    throw new CliError(`${what} ${path}: ${drop((e as Error).message)}`);
  }
}

/**
 * After the GPU opens: loads a checked weights file into a freshly built model, strictly. On failure
 * the model's tensors are freed and the error names the file once (as `what`, default 'weights').
 */
export async function loadStrictly<N extends { loadWeights(source: ReturnType<typeof bytesSource>): Promise<unknown>; dispose(): void }>(net: N, w: { path: string; bytes: Uint8Array; what?: string }): Promise<N> {
  try {
    await net.loadWeights(bytesSource(w.bytes, w.path));
  } catch (e) {
    net.dispose();
    throw new CliError(`${w.what ?? 'weights'} ${w.path}: ${(e as Error).message.replace(`${w.path}: `, '')}`);
  }
  return net;
}
