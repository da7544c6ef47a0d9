// MedSAM checkpoints through the weights readers: test/fixtures/medsam_tiny_train.pth, written by the
// real torch.save (medsam_reference.py, PyTorch 1.13) as MedSAM's train_one_gpu.py saves a training
// checkpoint ({"model": state_dict, "optimizer": AdamW state with its tensors, "epoch": 3}), loads
// strictly into the tiny model with the formula's values and gives PyTorch's masks; converted to
// safetensors it loads the same; a model of another layout refuses it naming the keys. vit_b's
// layout is the schema `medseg convert --model medsam` checks medsam_vit_b.pth against.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { models, noGrad, tensor } from '../../src/index.js';
import { bytesSource, convert, MemorySink, schemasFor, SchemaMismatchError } from '../../src/weights/index.js';
import { ready } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { chainLengths, expectGolden, fixtureTensor, fixtureValues } from './medsam-helpers.js';

beforeAll(ready);

const PTH = join(__dirname, '../fixtures/medsam_tiny_train.pth');
const nets: models.MedSAM[] = [];
const tiny = () => {
  const n = new models.MedSAM({ config: 'tiny' });
  nets.push(n);
  return n;
};
afterEach(() => {
  for (const n of nets.splice(0)) for (const [, t] of n.stateDict()) t.dispose();
});

async function expectFormulaValues(net: models.MedSAM) {
  for (const [k, t] of net.stateDict()) {
    const got = await t.read();
    const want = fixtureValues(k, t.shape);
    expect(got.length, k).toBe(want.length);
    let same = true;
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) same = false;
    expect(same, `${k} holds the checkpoint's values`).toBe(true);
  }
}

/** The box masks of medsam.test.ts, against the same golden. */
async function expectBoxMasks(net: models.MedSAM) {
  net.eval();
  const S = net.config.imageSize;
  const out = noGrad(() => net.forward(fixtureTensor('input.image', [1, 3, S, S], 0.5, 0.5), { boxes: tensor([[10.0, 14.5, 41.0, 52.25]]) }));
  const { encoderK, decoderK } = chainLengths(net.config);
  await expectGolden(out.lowResLogits, 'tiny.box.masks', reductionTol(encoderK + decoderK));
}

describe('MedSAM checkpoints', () => {
  it("a training checkpoint written by torch.save loads strictly: the state dict under ['model'], every value, PyTorch's masks", async () => {
    const net = tiny();
    const { notes, metadata } = await net.loadWeights(new Uint8Array(readFileSync(PTH)));
    expect(notes.join('; ')).toMatch(/\['model'\]/);
    expect(metadata.epoch).toBe('3');
    await expectFormulaValues(net);
    await expectBoxMasks(net);
  });

  it('converted to safetensors (f32), the checkpoint loads the same', async () => {
    const sink = new MemorySink();
    const net = tiny();
    const res = await convert(bytesSource(new Uint8Array(readFileSync(PTH)), 'medsam_tiny_train.pth'), sink, { model: 'medsam', schemas: [net.schema()] });
    expect(res.plan.records.length).toBe(net.stateDict().size);
    await net.loadWeights(sink.result!);
    await expectFormulaValues(net);
    await expectBoxMasks(net);
  });

  it('a model of another layout refuses the checkpoint, naming the mis-shaped keys', async () => {
    const net = new models.MedSAM({ config: { ...models.MEDSAM_CONFIGS.tiny, mlpRatio: 2 } });
    nets.push(net);
    const err = await net.loadWeights(new Uint8Array(readFileSync(PTH))).catch((e) => e);
    expect(err).toBeInstanceOf(SchemaMismatchError);
    expect(String(err.message)).toMatch(/image_encoder\.blocks\.0\.mlp\.lin1\.weight is \[128,32\], expected \[64,32\]/);
  });

  it("vit_b's schema is the medsam_vit_b.pth layout that convert --model medsam checks", () => {
    const net = new models.MedSAM({ config: 'vit_b' });
    nets.push(net);
    expect([...net.schema().tensors]).toEqual([...schemasFor('medsam')[0].tensors]);
  });
});
