// `medseg convert --model transunet` on the layouts a checkpoint really varies (src/cli/transunet-weights.ts):
// a real torch.save of the tiny model at imgSize 48, 5 classes, 1 skip converts with its options
// read from its shapes (no option given) to PyTorch's layout for them, and the result loads strictly
// into that TransUNet with every value as torch.save wrote it; options that contradict a state
// dict are refused. The tiny ImageNet-21k-layout .npz converts with its configuration read from its
// shapes: at the default 32 x 32 its 3 x 3 position grid is resampled to 2 x 2 as PyTorch's
// load_from() does (the golden), at --img-size 48 the grid tokens are copied without the class
// token; a --config the encoder is not is refused. R50-ViT-B_16 layouts (the npz manifest's
// shapes) with --img-size 256, --classes 4, --n-skip 2 give PyTorch's layout for those options;
// a state dict of another network and TransUNet's options with another model are refused.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { models, weights } from '../../src/index.js';
import { runConvert, type ConvertArgs } from '../../src/cli/convert.js';
import { transunetLayout } from '../../src/cli/transunet-weights.js';
import type { Checkpoint } from '../../src/weights/convert.js';
import type { TensorRecord } from '../../src/weights/record.js';
import { expectClose, ready } from '../helpers.js';
import { TRANSUNET_LAYOUTS } from '../fixtures/transunet_layouts.js';
import { golden } from '../models/transunet-helpers.js';

beforeAll(ready);
const dir = mkdtempSync(join(tmpdir(), 'medseg-cli-transunet-convert-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const pth48 = join(FIXTURES, 'transunet_tiny_48_5_skip1.pth');
const npz = join(FIXTURES, 'transunet_tiny_in21k.npz');
const POS = 'transformer.embeddings.position_embeddings';

async function convert(checkpoint: string, output: string, more: Partial<ConvertArgs> = {}) {
  const lines: string[] = [];
  await runConvert({ checkpoint, output: join(dir, output), model: 'transunet', dtype: 'f32', progress: false, log: (l) => lines.push(l), ...more });
  const f = await weights.readSafetensors(weights.bytesSource(readFileSync(join(dir, output)), output));
  return { lines, f, tensors: new Map(f.tensors.map((t) => [t.name, t as TensorRecord])) };
}

describe('medseg convert --model transunet', () => {
  it('a state dict of another layout (48, 5 classes, 1 skip): options from its shapes, loads strictly', async () => {
    const { lines, f, tensors } = await convert(pth48, 'tiny48.safetensors');
    expect(lines[0]).toContain("schema 'transunet_tiny_48_5_skip1' (TransUNet state_dict, config 'tiny', imgSize 48, 5 classes, nSkip 1)");
    const layout = TRANSUNET_LAYOUTS.find((l) => l.config === 'tiny' && l.imgSize === 48)!;
    expect(f.tensors.map((t) => [t.name, t.shape])).toEqual(layout.tensors.filter(([k]) => !k.endsWith('num_batches_tracked')));
    const ck = await weights.openCheckpoint(weights.bytesSource(readFileSync(pth48), pth48));
    for (const k of [POS, 'decoder.blocks.0.conv1.0.weight', 'segmentation_head.0.bias']) expect(await weights.readFloat32(tensors.get(k)!)).toEqual(await weights.readFloat32(ck.tensors.get(k)!));

    // and it loads strictly into the TransUNet of those options, every value as torch.save wrote it
    const m = new models.TransUNet({ config: 'tiny', imgSize: 48, numClasses: 5, nSkip: 1 });
    try {
      await m.loadWeights(readFileSync(join(dir, 'tiny48.safetensors')));
      for (const [k, t] of m.stateDict()) if (!k.endsWith('num_batches_tracked')) expect(await t.read(), k).toEqual(await weights.readFloat32(ck.tensors.get(k)!));
    } finally {
      m.dispose();
    }
  });

  it("options that contradict a state dict's shapes are refused", async () => {
    const refused = (transunet: ConvertArgs['transunet'], msg: string) => expect(convert(pth48, 'no.safetensors', { transunet })).rejects.toThrow(msg);
    await refused({ numClasses: '9' }, `the weights in ${pth48} have 5 classes, not --classes 9`);
    await refused({ imgSize: 224 }, `the weights in ${pth48} are for 48x48 input (9 position tokens), not --img-size 224`);
    await refused({ nSkip: 3 }, `the weights in ${pth48} use 1 skip connection, not --n-skip 3`);
    await refused({ config: 'R50-ViT-B_16' }, `the weights in ${pth48} are TransUNet 'tiny' (their shapes say so), not --config R50-ViT-B_16`);
    await refused({ imgSize: '40' }, '--img-size must be a multiple of 16');
    const medsam = join(FIXTURES, 'medsam_tiny_train.pth');
    await expect(convert(medsam, 'no.safetensors')).rejects.toThrow(`the weights in ${medsam}: TransUNet: the checkpoint has no 'transformer.embeddings.position_embeddings' (not a TransUNet state dict?)`);
    await expect(convert(pth48, 'no.safetensors', { model: 'vnet', transunet: { imgSize: 48 } })).rejects.toThrow("--config, --img-size, --classes and --n-skip are TransUNet's options (--model transunet), not vnet's");
  });

  it("the ImageNet-21k .npz: its config from its shapes, the position grid resampled as load_from() does", async () => {
    const at32 = await convert(npz, 'npz32.safetensors');
    expect(at32.lines.join('\n')).toContain('position table resampled from its 3x3 grid to 2x2 for 32x32 input');
    expect(at32.lines[0]).toContain("schema 'transunet_tiny_32_9_skip3'");
    expect([...at32.tensors.keys()].every((k) => k.startsWith('transformer.'))).toBe(true);
    const g = golden('npz.position_embeddings');
    expect(at32.tensors.get(POS)!.shape).toEqual(g.shape);
    expectClose(await weights.readFloat32(at32.tensors.get(POS)!), g.data, { rtol: 1e-6, atol: 1e-7 }, 'resampled position table vs load_from');

    const at48 = await convert(npz, 'npz48.safetensors', { transunet: { imgSize: 48 } });
    expect(at48.lines.join('\n')).not.toContain('resampled');
    const ck = await weights.openCheckpoint(weights.bytesSource(readFileSync(npz), npz));
    const raw = await weights.readFloat32(ck.tensors.get('Transformer/posembed_input/pos_embedding')!);
    const D = raw.length / 10;
    expect(await weights.readFloat32(at48.tensors.get(POS)!)).toEqual(raw.slice(D));

    await expect(convert(npz, 'no.safetensors', { transunet: { config: 'R50-ViT-B_16' } })).rejects.toThrow(`the weights in ${npz} are a TransUNet 'tiny' encoder (their shapes say so), not --config R50-ViT-B_16`);
  });

  it("R50-ViT-B_16's npz layout with --img-size 256 --classes 4 --n-skip 2: PyTorch's layout for those options", () => {
    const tensors = new Map<string, TensorRecord>([...weights.transunetNpzManifest()].map(([k, shape]) => [k, { name: k, shape, dtype: 'F32' } as unknown as TensorRecord]));
    const ck: Checkpoint = { format: 'npz', tensors, notes: [], metadata: {} };
    const l = transunetLayout(ck, { imgSize: 256, numClasses: 4, nSkip: 2 }, 'R50+ViT-B_16.npz');
    expect(l.options).toEqual({ config: 'R50-ViT-B_16', imgSize: 256, numClasses: 4, nSkip: 2 });
    expect(l.encoderOnly).toBe(true);
    expect(l.notes).toEqual(["position table resampled from its 14x14 grid to 16x16 for 256x256 input (bilinear, corner-aligned: load_from()'s zoom order 1)"]);
    expect([...l.schema.tensors]).toEqual(TRANSUNET_LAYOUTS.find((x) => x.imgSize === 256)!.tensors);
    expect(transunetLayout(ck, {}, 'R50+ViT-B_16.npz').options).toEqual({ config: 'R50-ViT-B_16', imgSize: 224, numClasses: 9, nSkip: 3 });
  });
});
