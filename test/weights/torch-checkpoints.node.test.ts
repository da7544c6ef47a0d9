// Checkpoints written by the real torch.save (test/fixtures/make-torch-checkpoints.py, PyTorch 1.13):
// the legacy (pre-1.6) format reads like the zip format, value by value; training checkpoints
// (optimizer state tensors, `module.` keys, a tensor-valued metric beside the model, nested
// containers, pickle protocol 4) give their model's state dict, chosen by what fits the schema.
// Expected values are the generator's formula, computed again here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesSource, convert, MemorySink, openCheckpoint, readPth, readSafetensors, stateDict, toFloat32, type Schema } from '../../src/weights/index.js';

const DIR = join(__dirname, '../fixtures/torch');
const file = (f: string) => bytesSource(readFileSync(join(DIR, f)), f);

/** value(seed, i) of make-torch-checkpoints.py */
const value = (seed: number, i: number) => (((i * 7 + seed * 13) % 61) - 30) / 16;
const int = (seed: number, i: number) => ((i * 7 + seed * 13) % 61) - 30;

/** The state dict every fixture holds: key, shape, dtype, and element i of its C-order values. */
const SD: { key: string; shape: number[]; dtype: string; at: (i: number) => number }[] = [
  { key: 'conv.weight', shape: [4, 2, 3, 3], dtype: 'F32', at: (i) => value(1, i) },
  { key: 'conv.bias', shape: [4], dtype: 'F32', at: (i) => value(2, i) },
  { key: 'bn.weight', shape: [4], dtype: 'F32', at: (i) => value(3, i) },
  { key: 'bn.bias', shape: [4], dtype: 'F32', at: (i) => value(4, i) },
  { key: 'bn.running_mean', shape: [4], dtype: 'F32', at: (i) => value(5, i) },
  { key: 'bn.running_var', shape: [4], dtype: 'F32', at: (i) => value(6, i) },
  { key: 'bn.num_batches_tracked', shape: [], dtype: 'I64', at: () => 7 },
  { key: 'fc.weight', shape: [3, 5], dtype: 'F32', at: (i) => value(8, i) },
  { key: 'half.weight', shape: [2, 3], dtype: 'F16', at: (i) => value(9, i) },
  { key: 'dbl.weight', shape: [3], dtype: 'F64', at: (i) => value(10, i) },
  { key: 'idx.buffer', shape: [5], dtype: 'I32', at: (i) => int(11, i) },
  { key: 'mask.buffer', shape: [2, 2], dtype: 'BOOL', at: (i) => ((i + 12) % 3 === 0 ? 1 : 0) },
  { key: 'shared.a', shape: [2, 3], dtype: 'F32', at: (i) => value(13, i) },
  { key: 'shared.b', shape: [3, 2], dtype: 'F32', at: (i) => value(13, 6 + i) },
  { key: 'scalar', shape: [], dtype: 'F32', at: () => value(14, 0) },
  { key: 'param.weight', shape: [2, 2], dtype: 'F32', at: (i) => value(15, i) },
];
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

async function expectStateDict(f: string, path: string[], prefix: string) {
  const ck = await readPth(file(f));
  expect(ck.format).toBe(f.startsWith('legacy') ? 'legacy' : 'zip');
  const sd = stateDict(ck.root, f);
  expect(sd.path, f).toEqual(path);
  expect(sd.strippedPrefix, f).toBe(prefix);
  expect([...sd.tensors.keys()], f).toEqual(SD.map((t) => t.key));
  for (const t of SD) {
    const r = ck.record(t.key, sd.tensors.get(t.key)!);
    expect(r.shape, `${f}: ${t.key}`).toEqual(t.shape);
    expect(r.dtype, `${f}: ${t.key}`).toBe(t.dtype);
    const got = toFloat32(await r.read(), r.dtype);
    const want = Array.from({ length: numel(t.shape) }, (_, i) => t.at(i));
    expect([...got], `${f}: ${t.key}`).toEqual(want);
  }
  return sd;
}

describe('legacy torch.save format', () => {
  it('a legacy state dict reads like the zip one, value by value (every dtype, views, shared storage, 0-d, Parameter)', async () => {
    await expectStateDict('legacy_state_dict.pth', [], '');
    await expectStateDict('zip_state_dict.pth', [], '');
  });
  it('a legacy training checkpoint: module. keys, Adam state tensors, a tensor metric', async () => {
    const sd = await expectStateDict('legacy_train_checkpoint.pth', ['state_dict'], 'module.');
    expect(sd.info).toMatchObject({ epoch: '12' });
    expect(sd.candidates).toBeGreaterThan(3);
  });
  it('legacy, pickle protocol 4, the state dict nested under names no convention lists', async () => {
    await expectStateDict('legacy_nested_protocol4.pth', ['run', 'weights', 'net'], '');
  });
  it('a truncated legacy file names the storage that is cut', async () => {
    const bytes = readFileSync(join(DIR, 'legacy_state_dict.pth'));
    await expect(readPth(bytesSource(bytes.subarray(0, bytes.length - 3), 'cut.pth'))).rejects.toThrow(/cut\.pth: storage '\d+' .* passes the end of the data/);
    await expect(readPth(bytesSource(bytes.subarray(0, 900), 'cut.pth'))).rejects.toThrow(/^cut\.pth \(legacy torch\.save, object\): .*passes the end of the pickle/);
  });
});

describe('the state dict is found by what fits the schema', () => {
  const schema: Schema = { id: 'fixture', model: 'vnet', description: 'the fixtures’ state dict', tensors: new Map(SD.map((t) => [t.key, t.shape])) };
  it('a tensor-valued metric at the top level beside model (was refused) and SGD momentum buffers', async () => {
    await expectStateDict('zip_metric_beside_model.pth', ['model'], '');
    const ck = await openCheckpoint(file('zip_metric_beside_model.pth'), { schemas: [schema] });
    expect([...ck.tensors.keys()]).toEqual(SD.map((t) => t.key));
    expect(ck.notes.join('\n')).toMatch(/state dict found under \['model'\] \(the best fit to the schema of \d+ dicts of tensors\)/);
  });
  for (const f of ['legacy_state_dict.pth', 'zip_state_dict.pth', 'legacy_train_checkpoint.pth', 'zip_metric_beside_model.pth', 'legacy_nested_protocol4.pth']) {
    it(`converts ${f} against the schema, value by value`, async () => {
      const sink = new MemorySink();
      const { plan } = await convert(file(f), sink, { model: 'vnet', schemas: [schema], keepNumBatchesTracked: true });
      if (f.startsWith('legacy')) expect(plan.notes).toContain('legacy (pre-1.6) torch.save format');
      const out = await readSafetensors(sink.result!);
      expect(out.tensors.map((t) => t.name).sort()).toEqual(SD.map((t) => t.key).sort());
      for (const t of SD) {
        const e = out.tensors.find((x) => x.name === t.key)!;
        const want = Array.from({ length: numel(t.shape) }, (_, i) => t.at(i));
        expect([...toFloat32(await e.read(), e.dtype)], `${f}: ${t.key}`).toEqual(want);
      }
    });
  }
  it("strips a shared prefix other than 'module.' when the schema asks for it", async () => {
    const prefixed: Schema = { ...schema, tensors: new Map([...schema.tensors].map(([k, s]) => [`module.${k}`, s])) };
    const ck = await openCheckpoint(file('legacy_train_checkpoint.pth'), { schemas: [prefixed] });
    expect([...ck.tensors.keys()][0]).toBe('module.conv.weight');
    const ck2 = await openCheckpoint(file('legacy_train_checkpoint.pth'), { schemas: [schema] });
    expect([...ck2.tensors.keys()][0]).toBe('conv.weight');
  });
});
