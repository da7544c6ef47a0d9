// weights.load(): safetensors, .pth and .npz from bytes, a Blob and a (data:) URL, uploaded
// tensor by tensor to the GPU; values read back equal what the fixture generator wrote,
// progress is reported per tensor, and a mismatching checkpoint loads nothing.
import { beforeAll, describe, expect, it } from 'vitest';
import { weights } from '../../src/index.js';
import { held, ready } from '../helpers.js';
import { makeTensor, manifestTensors, writeNpz, writePth, type FixtureTensor } from '../fixtures/make-checkpoints.js';

beforeAll(ready);

const ts: FixtureTensor[] = [makeTensor('a.weight', [5, 7]), makeTensor('a.bias', [5], 'F16'), makeTensor('b.weight', [3, 2, 2], 'BF16'), makeTensor('n', [], 'I64')];

async function expectLoaded(got: Map<string, { shape: readonly number[]; read(): Promise<Float32Array>; dispose(): void }>, want: FixtureTensor[]) {
  expect([...got.keys()].sort()).toEqual(want.map((t) => t.name).sort());
  for (const t of want) {
    const g = got.get(t.name)!;
    expect(g.shape, t.name).toEqual(t.shape);
    expect([...(await g.read())], t.name).toEqual([...t.values]);
    g.dispose();
  }
}

describe('weights.load', () => {
  it('loads a .pth from bytes and from a Blob, reporting progress per tensor', async () => {
    const bytes = writePth(ts, { modes: ['shared', 'transposed'], wrap: 'train', modulePrefix: true });
    for (const src of [bytes, new Blob([bytes as BlobPart])]) {
      const seen: number[] = [];
      const w = await weights.load(src, { onProgress: (p) => seen.push(p.loadedBytes / p.totalBytes) });
      expect(w.format).toBe('pth');
      expect(seen.length).toBe(ts.length);
      expect(seen[seen.length - 1]).toBe(1);
      expect([...seen].sort((a, b) => a - b)).toEqual(seen);
      await expectLoaded(w.tensors, ts);
    }
  });

  it('streams a safetensors file from a URL in file order', async () => {
    const file = await weights.serializeSafetensors(new Map(ts.filter((t) => t.dtype === 'F32').map((t) => [t.name, { shape: t.shape, data: Float32Array.from(t.values) }])), { model: 'x' });
    let b64 = '';
    for (const c of file) b64 += String.fromCharCode(c);
    const url = `data:application/octet-stream;base64,${btoa(b64)}`;
    const names: string[] = [];
    const w = await weights.load(url, { onProgress: (p) => names.push(p.name) });
    expect(w.metadata).toEqual({ model: 'x' });
    expect(names).toEqual(['a.weight']);
    await expectLoaded(w.tensors, ts.filter((t) => t.dtype === 'F32'));
  });

  it('maps and checks against a model schema while loading (TransUNet .npz)', async () => {
    const schemas = weights.schemasFor('transunet').map((s) => weights.scaledSchema(s, 16));
    const npz = manifestTensors(weights.manifests.transunet_r50_vit_b16_imagenet21k_npz.tensors, 16).filter((t) => !t.name.startsWith('head/'));
    const w = await weights.load(writeNpz(npz, { compressed: true }), { model: 'transunet', schemas, filter: (k) => k.startsWith('transformer.embeddings.hybrid_model.root') });
    expect([...w.tensors.keys()].sort()).toEqual(['transformer.embeddings.hybrid_model.root.conv.weight', 'transformer.embeddings.hybrid_model.root.gn.bias', 'transformer.embeddings.hybrid_model.root.gn.weight']);
    const gn = npz.find((t) => t.name === 'gn_root/scale')!;
    expect([...(await w.tensors.get('transformer.embeddings.hybrid_model.root.gn.weight')!.read())]).toEqual([...gn.values]);
    for (const t of w.tensors.values()) t.dispose();
  });

  it('loads nothing when the checkpoint does not match the schema', async () => {
    const before = held().tensors;
    const schemas = weights.schemasFor('medsam').map((s) => weights.scaledSchema(s, 16));
    await expect(weights.load(writePth(ts), { model: 'medsam', schemas })).rejects.toThrow(/missing/);
    expect(held().tensors).toBe(before);
  });

  it('round-trips GPU tensors through weights.save', async () => {
    const w = await weights.load(writePth(ts.slice(0, 2)));
    const file = (await weights.save(w.tensors))!;
    const back = await weights.load(file);
    await expectLoaded(back.tensors, ts.slice(0, 2));
    for (const t of w.tensors.values()) t.dispose();
  });

  it('converts a dropped file once and serves the cached result next time (OPFS where available)', async () => {
    await weights.clearCache();
    const schemas = weights.schemasFor('medsam').map((s) => weights.scaledSchema(s, 16));
    const ts = manifestTensors(weights.manifests.medsam_vit_b.tensors, 16).slice(0, 314);
    const file = new File([writePth(ts) as BlobPart], 'medsam_vit_b.pth', { lastModified: 1 });
    const first = await weights.convertCached(file, { model: 'medsam', schemas });
    expect(first.fromCache).toBe(false);
    const second = await weights.convertCached(file, { model: 'medsam', schemas });
    const hasOpfs = typeof navigator !== 'undefined' && !!navigator.storage?.getDirectory;
    expect(second.fromCache).toBe(hasOpfs);
    const w = await weights.load(second.file, { filter: (k) => k === 'mask_decoder.iou_token.weight' });
    const want = ts.find((t) => t.name === 'mask_decoder.iou_token.weight')!;
    await expectLoaded(w.tensors, [want]);
    await weights.clearCache();
  });
});
