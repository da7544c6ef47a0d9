// TransUNet's checkpoint layout without the model (src/models/transunet/schema.ts) against PyTorch:
// transunetSchema gives, key for key in state_dict order, the shapes of the PyTorch transcription's
// VisionTransformer (test/fixtures/transunet_layouts.ts) for R50-ViT-B_16 at 224 / 9 classes / 3
// skips (the 409-key manifest), 256 / 4 / 2 and 512 / 14 / 0, and the tiny config at 48 / 5 / 1 and
// 32 / 2 / 3, and equals the built model's own schema(); transunetOptionsFromShapes reads each of
// them back; transunetConfigFromShapes names the configuration from the encoder alone; shapes that
// fit no configuration are refused with what was found.
import { beforeAll, describe, expect, it } from 'vitest';
import { models, weights } from '../../src/index.js';
import type { TransUNetConfigName } from '../../src/models/transunet/transunet.js';
import { ready } from '../helpers.js';
import { TRANSUNET_LAYOUTS } from '../fixtures/transunet_layouts.js';

beforeAll(ready);

const r50 = weights.schemasFor('transunet')[0];
const layouts = [
  { config: 'R50-ViT-B_16' as TransUNetConfigName, imgSize: 224, numClasses: 9, nSkip: 3, tensors: [...r50.tensors] },
  ...TRANSUNET_LAYOUTS.map((l) => ({ ...l, config: l.config as TransUNetConfigName })),
];

describe('TransUNet layouts without the model', () => {
  for (const { tensors, ...o } of layouts) {
    it(`${o.config} at ${o.imgSize}, ${o.numClasses} classes, ${o.nSkip} skips: PyTorch's keys and shapes, read back`, () => {
      const s = models.transunetSchema(o);
      expect([...s.tensors]).toEqual(tensors);
      expect(models.transunetOptionsFromShapes(new Map(tensors))).toEqual(o);
    });
  }

  it("equals the built model's schema() (tiny, every nSkip)", () => {
    for (const nSkip of [0, 1, 2, 3]) {
      const o = { config: 'tiny' as const, imgSize: 48, numClasses: 5, nSkip };
      const m = new models.TransUNet(o);
      try {
        expect([...models.transunetSchema(o).tensors]).toEqual([...m.schema().tensors]);
      } finally {
        m.dispose();
      }
    }
  });

  it('names the configuration from the encoder alone, and refuses shapes that fit none', () => {
    const encoder = (t: [string, number[]][]) => new Map(t.filter(([k]) => k.startsWith('transformer.')));
    expect(models.transunetConfigFromShapes(encoder([...r50.tensors]))).toBe('R50-ViT-B_16');
    expect(models.transunetConfigFromShapes(encoder(layouts[4].tensors))).toBe('tiny');
    const fewer = encoder([...r50.tensors]);
    for (const k of [...fewer.keys()]) if (k.startsWith('transformer.encoder.layer.11.')) fewer.delete(k);
    expect(() => models.transunetConfigFromShapes(fewer)).toThrow('the checkpoint (hidden 768, 11 layers, ResNet width 64, units 3,4,9) matches no config (R50-ViT-B_16, tiny)');
    expect(() => models.transunetSchema({ config: 'tiny', imgSize: 40, numClasses: 2, nSkip: 3 })).toThrow('imgSize must be a positive multiple of 16, got 40');
  });
});
