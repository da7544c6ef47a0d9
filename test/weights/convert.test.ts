// Conversion to safetensors on reduced-size fixtures with exactly the manifests' keys (shapes
// shrunk by scaleShape): MedSAM, the four V-Net schemas, TransUNet .pth and its ImageNet-21k
// .npz through load_from()'s layout changes (checked against this file's own element-wise
// formulas), and the mismatch errors, which must leave the output untouched.
import { describe, expect, it } from 'vitest';
import { bytesSource, convert, readSafetensors, schemasFor, scaledSchema, toFloat32, manifests, SchemaMismatchError, MemorySink, type ByteSink, type ModelName, type Schema } from '../../src/weights/index.js';
import { makeTensor, manifestTensors, writeNpz, writePth, scaleShape, type FixtureDType, type FixtureTensor } from '../fixtures/make-checkpoints.js';

const FACTOR = 16;
const small = (model: ModelName) => schemasFor(model).map((s) => scaledSchema(s, FACTOR));

class SpySink implements ByteSink {
  writes = 0;
  aborted = false;
  inner = new MemorySink();
  async write(c: Uint8Array) {
    this.writes++;
    await this.inner.write(c);
  }
  close() {
    return this.inner.close();
  }
  async abort() {
    this.aborted = true;
    await this.inner.abort();
  }
  get result() {
    return this.inner.result;
  }
}

async function run(bytes: Uint8Array, name: string, model: ModelName, extra: { dtype?: 'f32' | 'f16'; keepNumBatchesTracked?: boolean; schemas?: Schema[] } = {}) {
  const sink = new SpySink();
  const res = await convert(bytesSource(bytes, name), sink, { model, schemas: extra.schemas ?? small(model), dtype: extra.dtype, keepNumBatchesTracked: extra.keepNumBatchesTracked });
  return { ...res, file: await readSafetensors(sink.result!) };
}

async function expectSameValues(file: Awaited<ReturnType<typeof readSafetensors>>, expected: Map<string, { shape: number[]; values: ArrayLike<number> }>) {
  expect(file.tensors.map((t) => t.name).sort()).toEqual([...expected.keys()].sort());
  for (const t of file.tensors) {
    const want = expected.get(t.name)!;
    expect(t.shape, t.name).toEqual(want.shape);
    const got = toFloat32(await t.read(), t.dtype);
    for (let i = 0; i < got.length; i++) if (got[i] !== want.values[i]) expect.fail(`${t.name}: element ${i} is ${got[i]}, expected ${want.values[i]}`);
  }
}

const cycle = (dtypes: FixtureDType[]) => (_k: string, i: number) => dtypes[i % dtypes.length];
const asExpected = (ts: FixtureTensor[]) => new Map(ts.map((t) => [t.name, t]));

describe('convert: .pth', { timeout: 30_000 }, () => {
  it('MedSAM: every key, in state_dict order, value by value (mixed dtypes and layouts, f32 and f16 out)', async () => {
    const ts = manifestTensors(manifests.medsam_vit_b.tensors, FACTOR, cycle(['F32', 'F32', 'F16', 'BF16', 'F64']));
    const bytes = writePth(ts, { prefix: 'medsam_vit_b', modes: ['own', 'transposed', 'shared', 'padded'], metadata: true });
    for (const dtype of ['f32', 'f16'] as const) {
      const { plan, file } = await run(bytes, 'medsam_vit_b.pth', 'medsam', { dtype });
      expect(plan.schema.id).toBe('medsam_vit_b/16');
      expect(file.tensors.map((t) => t.name)).toEqual(manifests.medsam_vit_b.tensors.map(([k]) => k));
      expect(new Set(file.tensors.map((t) => t.dtype))).toEqual(new Set([dtype === 'f16' ? 'F16' : 'F32']));
      expect(file.metadata).toMatchObject({ model: 'medsam', schema: 'medsam_vit_b/16', source_format: 'pth', dtype });
      await expectSameValues(file, asExpected(ts));
    }
  });

  const vnets: { id: string; manifest: string; keep?: (k: string) => boolean; wrap?: 'train' | 'model'; modulePrefix?: boolean; legacy?: boolean }[] = [
    { id: 'vnet_pytorch', manifest: 'vnet_pytorch', wrap: 'train', modulePrefix: true },
    // what vnet.pytorch's train.py saved with torch < 1.6: the legacy format
    { id: 'vnet_pytorch', manifest: 'vnet_pytorch', wrap: 'train', modulePrefix: true, legacy: true },
    { id: 'vnet_pytorch_elu', manifest: 'vnet_pytorch', keep: (k) => !/\.relu\d\.weight$/.test(k), wrap: 'train', modulePrefix: true, legacy: true },
    { id: 'vnet_pytorch_elu', manifest: 'vnet_pytorch', keep: (k) => !/\.relu\d\.weight$/.test(k), wrap: 'train', modulePrefix: true },
    { id: 'vnet_monai', manifest: 'vnet_monai' },
    { id: 'vnet_monai_prelu', manifest: 'vnet_monai_prelu', wrap: 'model' },
  ];
  for (const v of vnets) {
    it(`V-Net: recognises the ${v.id} schema and drops num_batches_tracked${v.legacy ? ' (legacy torch.save format)' : ''}`, async () => {
      const entries = manifests[v.manifest].tensors.filter(([k]) => (v.keep ? v.keep(k) : true));
      const ts = manifestTensors(entries, FACTOR);
      const { plan, file } = await run(writePth(ts, { wrap: v.wrap, modulePrefix: v.modulePrefix, metadata: true, modes: ['own', 'shared'], legacy: v.legacy }), `${v.id}.pth`, 'vnet');
      if (v.legacy) expect(plan.notes).toContain('legacy (pre-1.6) torch.save format');
      expect(plan.schema.id).toBe(`${v.id}/16`);
      expect(plan.notes.join('\n')).toContain(`matched schema '${v.id}/16'`);
      if (v.modulePrefix) expect(plan.notes.join('\n')).toContain("stripped the 'module.' key prefix");
      await expectSameValues(file, asExpected(ts.filter((t) => !t.name.endsWith('num_batches_tracked'))));
    });
  }

  it('TransUNet .pth: keeps num_batches_tracked as I64 when asked', async () => {
    const ts = manifestTensors(manifests.transunet_r50_vit_b16_synapse_pth.tensors, FACTOR);
    const { file } = await run(writePth(ts, { prefix: 'epoch_149', protocol: 4 }), 'epoch_149.pth', 'transunet', { keepNumBatchesTracked: true });
    expect(file.tensors.length).toBe(409);
    expect(file.tensors.find((t) => t.name === 'decoder.conv_more.1.num_batches_tracked')?.dtype).toBe('I64');
    await expectSameValues(file, asExpected(ts));
  });
});

describe('convert: mismatches write nothing', () => {
  const base = () => manifestTensors(manifests.medsam_vit_b.tensors, FACTOR);

  it('lists missing, unexpected and mis-shaped keys with counts', async () => {
    const ts = base();
    ts.splice(3, 1); // missing
    ts[10] = { ...ts[10], name: 'image_encoder.extra.weight' }; // unexpected + missing
    ts[20] = { ...ts[20], shape: [ts[20].values.length] }; // mis-shaped
    const misShaped = ts[20].name;
    const sink = new SpySink();
    const err = await convert(bytesSource(writePth(ts), 'bad.pth'), sink, { model: 'medsam', schemas: small('medsam') }).catch((e) => e);
    expect(err).toBeInstanceOf(SchemaMismatchError);
    expect(err.message).toMatch(/2 missing, 1 unexpected, 1 mis-shaped/);
    expect(err.message).toContain(manifests.medsam_vit_b.tensors[3][0]);
    expect(err.message).toContain('image_encoder.extra.weight');
    expect(err.message).toContain(`${misShaped} is [${ts[20].shape}]`);
    expect(sink.writes).toBe(0);
    expect(sink.aborted).toBe(true);
  });

  it('shows the first few of many and counts the rest', async () => {
    const sink = new SpySink();
    const ts = base().slice(0, 50);
    const err = await convert(bytesSource(writePth(ts), 'half.pth'), sink, { model: 'medsam', schemas: small('medsam') }).catch((e) => e);
    expect(err.message).toMatch(/264 missing/);
    expect(err.message).toMatch(/\.\.\. \(259 more\)/);
    expect(sink.writes).toBe(0);
  });

  it('names the closest V-Net schema when none matches', async () => {
    const ts = manifestTensors(manifests.vnet_monai.tensors, FACTOR).slice(1);
    const err = await convert(bytesSource(writePth(ts), 'v.pth'), new SpySink(), { model: 'vnet', schemas: small('vnet') }).catch((e) => e);
    expect(err.message).toMatch(/schema 'vnet_monai\/16'.*1 missing, 0 unexpected/);
  });

  it('refuses an .npz for a model other than TransUNet, and a file of the wrong kind', async () => {
    const npz = writeNpz(manifestTensors(manifests.transunet_r50_vit_b16_imagenet21k_npz.tensors.slice(0, 3), FACTOR));
    await expect(convert(bytesSource(npz, 'x.npz'), new SpySink(), { model: 'medsam' })).rejects.toThrow(/--model transunet/);
    await expect(convert(bytesSource(new Uint8Array(100).fill(7), 'x.bin'), new SpySink(), { model: 'medsam' })).rejects.toThrow(/unrecognised checkpoint format/);
  });
});

// ---- TransUNet .npz: this file's own statement of load_from()'s mapping (models/transunet.md section 4)

type Ref = { key: string; shape: number[]; values: Float64Array };

function refMap(name: string, shape: number[], v: Float64Array, targetTokens?: number): Ref | null {
  const E = 'transformer.embeddings.';
  const HY = `${E}hybrid_model.`;
  const hwio = (key: string): Ref => {
    const [h, w, i, o] = shape;
    const out = new Float64Array(v.length);
    for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let c = 0; c < h; c++) for (let d = 0; d < w; d++) out[((a * i + b) * h + c) * w + d] = v[((c * w + d) * i + b) * o + a];
    return { key, shape: [o, i, h, w], values: out };
  };
  const same = (key: string, s = shape): Ref => ({ key, shape: s, values: v });
  const flat = (key: string) => same(key, [v.length]);
  const t2 = (key: string, r: number, c: number): Ref => {
    const out = new Float64Array(v.length);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = v[i * c + j];
    return { key, shape: [c, r], values: out };
  };
  const norm = (p: string) => (p === 'scale' ? 'weight' : 'bias');
  let m: RegExpMatchArray | null;
  if (name === 'embedding/kernel') return hwio(`${E}patch_embeddings.weight`);
  if (name === 'embedding/bias') return same(`${E}patch_embeddings.bias`);
  if (name === 'conv_root/kernel') return hwio(`${HY}root.conv.weight`);
  if ((m = name.match(/^gn_root\/(scale|bias)$/))) return flat(`${HY}root.gn.${norm(m[1])}`);
  if ((m = name.match(/^block(\d)\/unit(\d)\/conv([123])\/kernel$/))) return hwio(`${HY}body.block${m[1]}.unit${m[2]}.conv${m[3]}.weight`);
  if ((m = name.match(/^block(\d)\/unit(\d)\/conv_proj\/kernel$/))) return hwio(`${HY}body.block${m[1]}.unit${m[2]}.downsample.weight`);
  if ((m = name.match(/^block(\d)\/unit(\d)\/(gn[123]|gn_proj)\/(scale|bias)$/))) return flat(`${HY}body.block${m[1]}.unit${m[2]}.${m[3]}.${norm(m[4])}`);
  if ((m = name.match(/^Transformer\/encoder_norm\/(scale|bias)$/))) return same(`transformer.encoder.encoder_norm.${norm(m[1])}`);
  if (name === 'Transformer/posembed_input/pos_embedding') {
    const [, T, D] = shape;
    const n = targetTokens ?? T - 1;
    if (n === T - 1) return { key: `${E}position_embeddings`, shape: [1, n, D], values: v.slice(D) };
    // scipy.ndimage.zoom(order=1) of the g x g grid to n x n: corner-aligned bilinear.
    const g = Math.round(Math.sqrt(T - 1));
    const k = Math.round(Math.sqrt(n));
    const out = new Float64Array(n * D);
    for (let y = 0; y < k; y++)
      for (let x = 0; x < k; x++) {
        const sy = (y * (g - 1)) / (k - 1);
        const sx = (x * (g - 1)) / (k - 1);
        const y0 = Math.floor(sy), x0 = Math.floor(sx);
        const y1 = Math.min(y0 + 1, g - 1), x1 = Math.min(x0 + 1, g - 1);
        const fy = sy - y0, fx = sx - x0;
        for (let c = 0; c < D; c++) {
          const at = (yy: number, xx: number) => v[(1 + yy * g + xx) * D + c];
          out[(y * k + x) * D + c] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
        }
      }
    return { key: `${E}position_embeddings`, shape: [1, n, D], values: out };
  }
  if ((m = name.match(/^Transformer\/encoderblock_(\d+)\/(.*)$/))) {
    const L = `transformer.encoder.layer.${m[1]}.`;
    const r = m[2];
    let q: RegExpMatchArray | null;
    if ((q = r.match(/^LayerNorm_0\/(scale|bias)$/))) return same(`${L}attention_norm.${norm(q[1])}`);
    if ((q = r.match(/^LayerNorm_2\/(scale|bias)$/))) return same(`${L}ffn_norm.${norm(q[1])}`);
    if ((q = r.match(/^MlpBlock_3\/Dense_(\d)\/kernel$/))) return t2(`${L}ffn.fc${+q[1] + 1}.weight`, shape[0], shape[1]);
    if ((q = r.match(/^MlpBlock_3\/Dense_(\d)\/bias$/))) return same(`${L}ffn.fc${+q[1] + 1}.bias`);
    if ((q = r.match(/^MultiHeadDotProductAttention_1\/(query|key|value)\/kernel$/))) {
      // weight[h*dh + d, c] = kernel[c, h, d]
      const [D, H, dh] = shape;
      const out = new Float64Array(v.length);
      for (let c = 0; c < D; c++) for (let h = 0; h < H; h++) for (let d = 0; d < dh; d++) out[(h * dh + d) * D + c] = v[(c * H + h) * dh + d];
      return { key: `${L}attn.${q[1]}.weight`, shape: [H * dh, D], values: out };
    }
    if ((q = r.match(/^MultiHeadDotProductAttention_1\/(query|key|value)\/bias$/))) return flat(`${L}attn.${q[1]}.bias`);
    if (r === 'MultiHeadDotProductAttention_1/out/kernel') {
      // weight[c, h*dh + d] = kernel[h, d, c]
      const [H, dh, D] = shape;
      const out = new Float64Array(v.length);
      for (let h = 0; h < H; h++) for (let d = 0; d < dh; d++) for (let c = 0; c < D; c++) out[c * H * dh + h * dh + d] = v[(h * dh + d) * D + c];
      return { key: `${L}attn.out.weight`, shape: [D, H * dh], values: out };
    }
    if (r === 'MultiHeadDotProductAttention_1/out/bias') return same(`${L}attn.out.bias`);
  }
  return null;
}

describe('convert: TransUNet ImageNet-21k .npz', { timeout: 30_000 }, () => {
  // The unused 21843-class head keeps its key but gets a small shape (nothing reads it), to keep the test fast.
  const npzTensors = manifestTensors(manifests.transunet_r50_vit_b16_imagenet21k_npz.tensors, FACTOR, cycle(['F32', 'F32', 'F64', 'F16'])).map((t) =>
    t.name.startsWith('head/') ? makeTensor(t.name, t.shape.map((d) => (d === 21843 ? 37 : d)), t.dtype) : t,
  );
  const expected = new Map<string, Ref>();
  for (const t of npzTensors) {
    const r = refMap(t.name, t.shape, t.values);
    if (r) expected.set(r.key, r);
  }

  it('maps all 353 loaded arrays and matches the PyTorch schema keys exactly', () => {
    const pthKeys = manifests.transunet_r50_vit_b16_synapse_pth.tensors.map(([k]) => k).filter((k) => !k.startsWith('decoder.') && !k.startsWith('segmentation_head.'));
    expect(expected.size).toBe(353);
    expect([...expected.keys()].sort()).toEqual(pthKeys.sort());
  });

  for (const compressed of [false, true]) {
    it(`converts a ${compressed ? 'deflated' : 'stored'} .npz value by value (HWIO->OIHW, attention kernels, GroupNorm, position embedding)`, async () => {
      const { plan, file } = await run(writeNpz(npzTensors, { compressed, fortranEvery: 7, versions: [1, 2] }), 'R50+ViT-B_16.npz', 'transunet');
      expect(plan.format).toBe('npz');
      expect(plan.notes.join('\n')).toMatch(/ignored 5 arrays .*cls/);
      // Output order: the PyTorch state_dict order.
      const order = manifests.transunet_r50_vit_b16_synapse_pth.tensors.map(([k]) => k).filter((k) => expected.has(k));
      expect(file.tensors.map((t) => t.name).sort()).toEqual([...order].sort());
      expect(plan.records.map((r) => r.name)).toEqual(order);
      await expectSameValues(file, expected);
    });
  }

  it('resamples the position embedding to another grid (bilinear, corner-aligned)', async () => {
    const base = scaledSchema(schemasFor('transunet')[0], FACTOR);
    const D = base.tensors.get('transformer.embeddings.position_embeddings')![2];
    const schema: Schema = { ...base, id: 'transunet-grid7', tensors: new Map([...base.tensors].map(([k, s]) => [k, k === 'transformer.embeddings.position_embeddings' ? [1, 49, D] : s])) };
    const pos = npzTensors.find((t) => t.name === 'Transformer/posembed_input/pos_embedding')!;
    const want = refMap(pos.name, pos.shape, pos.values, 49)!;
    const { file } = await run(writeNpz(npzTensors), 'R50+ViT-B_16.npz', 'transunet', { schemas: [schema] });
    const got = file.tensors.find((t) => t.name === want.key)!;
    expect(got.shape).toEqual([1, 49, D]);
    const v = toFloat32(await got.read(), got.dtype);
    for (let i = 0; i < v.length; i++) expect(Math.abs(v[i] - want.values[i]), `element ${i}`).toBeLessThan(1e-5);
  });

  it('reports an npz array of the wrong shape and an unknown array', async () => {
    const ts = npzTensors.map((t) => (t.name === 'block1/unit1/conv2/kernel' ? { ...t, shape: [t.shape[0] * t.shape[1], t.shape[2], t.shape[3]] } : t));
    ts.push({ ...ts[0], name: 'mystery/kernel' });
    const err = await convert(bytesSource(writeNpz(ts), 'x.npz'), new SpySink(), { model: 'transunet', schemas: small('transunet') }).catch((e) => e);
    expect(err.message).toMatch(/1 unexpected, 1 mis-shaped/);
    expect(err.message).toContain('mystery/kernel');
    expect(err.message).toContain('4-d HWIO kernel');
  });
});

export const _unused = scaleShape;

describe('schemas', () => {
  it('hold the manifests’ key counts (V-Net ELU variant: 170 keys)', () => {
    const count = (m: ModelName) => schemasFor(m).map((s) => [s.id, s.tensors.size]);
    expect(count('medsam')).toEqual([['medsam_vit_b', 314]]);
    expect(count('transunet')).toEqual([['transunet_r50_vit_b16_synapse_pth', 409]]);
    expect(count('vnet')).toEqual([['vnet_pytorch', 202], ['vnet_pytorch_elu', 170], ['vnet_monai', 150], ['vnet_monai_prelu', 182]]);
  });

  it('map every full-size TransUNet npz array to its PyTorch shape', async () => {
    // Shapes only (no data): a full-size npz header set through the real (unscaled) schema.
    const npz = manifests.transunet_r50_vit_b16_imagenet21k_npz.tensors;
    const pth = new Map(manifests.transunet_r50_vit_b16_synapse_pth.tensors);
    const { npzTarget, npzTargetShape } = await import('../../src/weights/schemas/transunet-npz.js');
    let mapped = 0;
    for (const [name, shape] of npz) {
      const t = npzTarget(name);
      if (!t) continue;
      mapped++;
      expect(npzTargetShape(t.transform, shape, pth.get(t.key)), name).toEqual(pth.get(t.key));
    }
    expect(mapped).toBe(353);
  });
});
