// V-Net: module names and shapes equal the four checkpoint schemas (full size and the tiny preset's
// widths); a converted fixture checkpoint of each schema loads with loadStateDict(strict) and the model
// run on it matches the float64 reference network (test/reference/vnet.ts) with batch statistics;
// the forward with running statistics matches too (gradients: vnet-grad.test.ts). The numerical tests run the tiny code path with 2 base channels at
// 16^3 (the smallest legal volume): the 5x5x5 convolutions at full resolution dominate and run at a
// few MFLOP/s on the CPU adapters, so 4 channels would take minutes.
import { beforeAll, describe, expect, it } from 'vitest';
import { models, weights, tensor } from '../../src/index.js';
import { expectClose, ready, upload } from '../helpers.js';
import { Arr, randomArr } from '../reference/ndarray.js';
import { vnetRef } from '../reference/vnet.js';
import { manifestTensors, writePth } from '../fixtures/make-checkpoints.js';
import { NET_TOL, BASE, disposeNet, loadArrs, randomState, refConfig, type Options } from './vnet-helpers.js';

beforeAll(ready);

/** The widths of a preset with `base` channels instead of 16: every channel count (16 ... 256) scaled. */
const widths = (base: number) => (s: readonly number[]) => s.map((d) => (d >= 16 ? (d * base) / 16 : d));

const schemaCases: { id: string; manifest: string; options: Options; keep?: (k: string) => boolean; wrap?: 'train' | 'model'; modulePrefix?: boolean }[] = [
  { id: 'vnet_pytorch', manifest: 'vnet_pytorch', options: { preset: 'paper' }, wrap: 'train', modulePrefix: true },
  { id: 'vnet_pytorch_elu', manifest: 'vnet_pytorch', options: { preset: 'paper', act: 'elu' }, keep: (k) => !/\.relu\d\.weight$/.test(k), wrap: 'train', modulePrefix: true },
  { id: 'vnet_monai', manifest: 'vnet_monai', options: { preset: 'monai' } },
  { id: 'vnet_monai_prelu', manifest: 'vnet_monai_prelu', options: { preset: 'monai', act: 'prelu' }, wrap: 'model' },
];
const manifestEntries = (c: (typeof schemaCases)[number], base: number) =>
  weights.manifests[c.manifest].tensors.filter(([k]) => (c.keep ? c.keep(k) : true)).map(([k, s]) => [k, widths(base)(s)] as [string, number[]]);
const keysAndShapes = (net: models.VNet) => new Map([...net.stateDict()].map(([k, t]) => [k, [...t.shape]] as [string, number[]]));

describe('VNet structure', () => {
  it('paper preset: state_dict keys and shapes equal the vnet_pytorch manifest (45,603,934 parameters)', () => {
    const net = new models.VNet({ preset: 'paper' });
    expect(keysAndShapes(net)).toEqual(new Map(manifestEntries(schemaCases[0], 16)));
    expect(net.parameters().reduce((n, p) => n + p.size, 0)).toBe(45_603_934);
    disposeNet(net);
  });
  for (const c of schemaCases) {
    it(`${JSON.stringify(c.options)} with 4 base channels (tiny): keys and shapes equal the ${c.id} schema scaled`, () => {
      const net = new models.VNet({ ...c.options, baseChannels: 4 });
      expect(keysAndShapes(net)).toEqual(new Map(manifestEntries(c, 4)));
      disposeNet(net);
    });
  }

  it('rejects sizes that are not multiples of 16 and bad options', () => {
    const net = new models.VNet({ preset: 'tiny' });
    const x = tensor(new Float32Array(24 * 16 * 16), [1, 1, 24, 16, 16]);
    expect(() => net.forward(x)).toThrow(/multiples of 16, got \[1, 1, 24, 16, 16\]/);
    expect(() => new models.VNet({ preset: 'tiny', inChannels: 3 })).toThrow(/inChannels \(3\) must divide baseChannels \(4\)/);
    expect(() => new models.VNet({ act: 'relu' as 'elu' })).toThrow(/act must be/);
    x.dispose();
    disposeNet(net);
  });
});

describe('VNet loads converted fixture checkpoints', () => {
  const schemas = weights.schemasFor('vnet').map((s) => ({ ...s, id: `${s.id}/base${BASE}`, tensors: new Map([...s.tensors].map(([k, sh]) => [k, widths(BASE)(sh)])) }));
  /** .pth fixture -> weights.convert (schema detection) -> safetensors -> weights.load -> loadStateDict(strict). */
  async function convertAndLoad(c: (typeof schemaCases)[number], bn: 'batch' | 'running') {
    const fixture = manifestTensors(manifestEntries(c, BASE), 1);
    const pth = writePth(fixture, { wrap: c.wrap, modulePrefix: c.modulePrefix });
    const sink = new weights.MemorySink();
    const res = await weights.convert(weights.bytesSource(pth, `${c.id}.pth`), sink, { model: 'vnet', schemas });
    expect(res.plan.schema.id).toBe(`${c.id}/base${BASE}`);
    const loaded = await weights.load(sink.result!);
    const net = new models.VNet({ ...c.options, baseChannels: BASE, batchNormMode: bn }).eval();
    net.loadStateDict(loaded.tensors, { strict: true });
    for (const t of loaded.tensors.values()) t.dispose();
    const state = new Map(fixture.filter((t) => !t.name.endsWith('num_batches_tracked')).map((t) => [t.name, new Arr(t.values, t.shape)]));
    return { net, state };
  }

  it('every schema: the converted file loads with strict key and shape checks', async () => {
    for (const c of schemaCases) disposeNet((await convertAndLoad(c, 'batch')).net);
  });

  // The forward on the loaded values against the reference: one checkpoint of each naming scheme.
  for (const c of [schemaCases[0], schemaCases[2]]) {
    it(`${c.id}: the model on the loaded checkpoint matches the reference (batch statistics, N=2, 16^3)`, async () => {
      const { net, state } = await convertAndLoad(c, 'batch');
      const xa = randomArr([2, 1, 16, 16, 16], 19, -1, 1);
      const x = upload(xa);
      const y = net.forward(x);
      expect(y.shape).toEqual([2, 2, 16, 16, 16]);
      const want = vnetRef(xa, state, refConfig(net, 'batch'));
      expectClose(await y.read(), want.data, NET_TOL, `VNet(${c.id} fixture) forward`);
      for (const t of [x, y]) t.dispose();
      disposeNet(net);
    });
  }
});

describe('VNet forward with running statistics', () => {
  it('vnet.pytorch, PReLU, eval with running statistics (N=1, 16^3)', async () => {
    const net = new models.VNet({ preset: 'tiny', baseChannels: BASE }).eval();
    const state = randomState(net, 3);
    loadArrs(net, state);
    const xa = randomArr([1, 1, 16, 16, 16], 11, -1, 1);
    const x = upload(xa);
    const y = net.forward(x);
    const want = vnetRef(xa, state, refConfig(net, 'running'));
    expectClose(await y.read(), want.data, NET_TOL, 'VNet(running statistics) forward');
    x.dispose();
    y.dispose();
    disposeNet(net);
  });
});

