// weights.save(): a dict of GPU tensors (e.g. model.stateDict()) to safetensors bytes, read
// back one tensor at a time; with a sink, streamed into it instead of returned.
import type { Tensor } from '../tensor.js';
import { MemorySink, type ByteSink } from './source.js';
import { writeSafetensors } from './safetensors.js';

export async function save(
  dict: Map<string, Tensor> | Record<string, Tensor>,
  options: { dtype?: 'f32' | 'f16'; metadata?: Record<string, string>; sink?: ByteSink } = {},
): Promise<Uint8Array | null> {
  const entries = dict instanceof Map ? [...dict] : Object.entries(dict);
  const sink = options.sink ?? new MemorySink();
  await writeSafetensors(
    entries.map(([name, t]) => ({
      record: {
        name,
        dtype: 'F32' as const,
        shape: [...t.shape],
        read: async () => {
          const v = await t.read();
          return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        },
      },
      dtype: options.dtype === 'f16' ? ('F16' as const) : ('F32' as const),
    })),
    sink,
    { metadata: options.metadata },
  );
  return sink instanceof MemorySink ? sink.result : null;
}
