// The conv family's tile-size variants (tiled-k32: 32-deep K slices; tiled-m16: 16-row tiles at any
// row count; src/ops/conv-gemm.ts's CONV_TILES) against the float64 reference: the forward, the
// input gradient (a transposed conv) and the weight gradient, each launch forced to the variant
// (the pick records must name it: no silent fallback), on conv3d and conv2d shapes whose rows,
// columns and reductions all end in partial tiles and slices, once as they are and once with a
// loop budget of 300 (K in chunks of a multiple of TK, summed by conv_finish). Where each is
// offered: tiled-k32's 64-row tiles not on a device with WebGPU's guaranteed 16 KiB of workgroup
// memory (a limit faked here), tiled-m16 not where tiled already has 16-row tiles.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { F, runtime } from '../../src/index.js';
import { recordPicks, setKernelVariant } from '../../src/gpu/variants.js';
import { setConvReductionLimits } from '../../src/ops/conv.js';
import { convTile, tiledChunk, type TiledVariant } from '../../src/ops/conv-gemm.js';
import { LOOP_BUDGET } from '../../src/ops/loop-budget.js';
import { tileSlicePasses } from '../../src/ops/matmul.js';
import { expectClose, ready, upload } from '../helpers.js';
import { conv as refConv, convInputGrad, convWeightGrad, type RefConvOptions } from '../reference/conv.js';
import { randomArr } from '../reference/ndarray.js';
import { reductionTol } from '../tolerance.js';

beforeAll(ready);
afterEach(() => {
  setKernelVariant('conv', null);
  setConvReductionLimits();
});

interface TileCase {
  name: string;
  x: number[];
  w: number[];
  opts: Parameters<typeof F.conv2d>[3];
  ref: RefConvOptions;
}

// Rows past one tile's edge, columns not a multiple of 64, reductions not a multiple of 32; as
// M / N / K of the forward, the input gradient and the weight gradient. tiled-m16 needs over 16
// rows in all three; tiled-k32 runs 12 rows (16-row tiles, TM 1) in the forward and the weight
// gradient and 20 (64-row tiles, TM 4) in the input gradient: each TK 32 pipeline compiles for
// seconds on SwiftShader, so the two cases share their three. (conv2d runs on the same pipelines
// as conv3d: shapes, strides and dilation are uniforms.)
const cases: Record<'tiled-k32' | 'tiled-m16', TileCase[]> = {
  'tiled-m16': [
    // 18 / 60 / 540, 20 / 60 / 486, 18 / 540 / 60
    { name: 'conv3d 20->18 k3 p1', x: [1, 20, 3, 4, 5], w: [18, 20, 3, 3, 3], opts: { padding: 1 }, ref: { padBefore: [1, 1, 1] } },
    // 20 / 70 / 216, 24 / 70 / 180, 20 / 216 / 70
    { name: 'conv2d 24->20 3x3 dilation 2 p2, batch 2', x: [2, 24, 5, 7], w: [20, 24, 3, 3], opts: { dilation: 2, padding: 2 }, ref: { dilation: [2, 2], padBefore: [2, 2] } },
  ],
  'tiled-k32': [
    // 12 / 60 / 540, 20 / 60 / 324, 12 / 540 / 60
    { name: 'conv3d 20->12 k3 p1', x: [1, 20, 3, 4, 5], w: [12, 20, 3, 3, 3], opts: { padding: 1 }, ref: { padBefore: [1, 1, 1] } },
    // 12 / 70 / 180, 20 / 70 / 108, 12 / 180 / 70
    { name: 'conv2d 20->12 3x3 dilation 2 p2, batch 2', x: [2, 20, 5, 7], w: [12, 20, 3, 3], opts: { dilation: 2, padding: 2 }, ref: { dilation: [2, 2], padBefore: [2, 2] } },
  ],
};
// at most 16 rows: tiled itself uses 16-row tiles
const fewRows: TileCase = { name: 'conv2d 5->6 3x3 p1', x: [1, 5, 9, 11], w: [6, 5, 3, 3], opts: { padding: 1 }, ref: { padBefore: [1, 1] } };

const kvol = (w: number[]) => w.slice(2).reduce((a, b) => a * b, 1);

/** Forward, input and weight gradients of c with every conv launch forced to `variant`. */
async function check(c: TileCase, variant: TiledVariant): Promise<void> {
  const X = randomArr(c.x, 31);
  const W = randomArr(c.w, 32);
  const want = refConv(X, W, null, c.ref);
  const GY = randomArr(want.shape, 33);
  const [x, w, gy] = [upload(X, true), upload(W, true), upload(GY)];
  setKernelVariant('conv', variant);
  const label = `${c.name} [${variant}]`;
  const { result: y, picks } = recordPicks(() => {
    const out = (c.x.length === 5 ? F.conv3d : F.conv2d)(x, w, null, c.opts);
    out.backward(gy);
    return out;
  });
  expect(picks.filter((p) => p.family === 'conv').map((p) => [p.variant, p.source]), `${label}: every launch`).toEqual([
    [variant, 'forced'],
    [variant, 'forced'],
    [variant, 'forced'],
  ]);
  const [Cout, CinG] = c.w;
  const outVox = want.size / (want.shape[0] * want.shape[1]);
  expectClose(await y.read(), want.data, reductionTol(CinG * kvol(c.w)), `${label} forward`);
  expectClose(await x.grad!.read(), convInputGrad(GY, W, c.x, c.ref).data, reductionTol(Cout * kvol(c.w)), `${label} input gradient`);
  expectClose(await w.grad!.read(), convWeightGrad(GY, X, c.w, c.ref).data, reductionTol(c.x[0] * outVox), `${label} weight gradient`);
  for (const t of [x.grad!, w.grad!, x, w, gy, y]) t.dispose();
}

describe('conv tile-size variants', () => {
  it('slice K in multiples of TK within the loop budget', () => {
    for (const v of ['tiled', 'tiled-k32', 'tiled-m16'] as TiledVariant[]) for (const M of [8, 40]) {
      const { TK, TM } = convTile(v, M);
      const k = tiledChunk({ TK, TM });
      expect(k % TK, `${v} M ${M}`).toBe(0);
      expect((k / TK) * tileSlicePasses({ TK, TM }) + 6 * TM + 16, `${v} M ${M}`).toBeLessThanOrEqual(LOOP_BUDGET);
    }
    // the passes of one K slice of _gemm_tile.wgsl, counted by hand from its loops: 1 for the slice
    // loop, (TK*BM/256 + 1) staging A's BM = 16*TM rows, (TK*64/256 + 1) staging B, then TK + 1 and
    // TK*(TM + 1) for the multiply-accumulate
    expect(tileSlicePasses({ TK: 16, TM: 4 })).toBe(1 + 5 + 5 + 17 + 80);
    expect(tileSlicePasses({ TK: 32, TM: 4 })).toBe(1 + 9 + 9 + 33 + 160);
    expect(tileSlicePasses({ TK: 16, TM: 1 })).toBe(1 + 2 + 5 + 17 + 32);
    expect(convTile('tiled-k32', 40)).toEqual({ TK: 32, TM: 4 });
    expect(convTile('tiled-m16', 40)).toEqual({ TK: 16, TM: 1 });
    expect(convTile('tiled', 8)).toEqual({ TK: 16, TM: 1 });
  });

  for (const variant of ['tiled-m16', 'tiled-k32'] as const) {
    for (const c of cases[variant]) {
      it(`${variant}: ${c.name}, forward and both gradients`, () => check(c, variant));
    }
    const c = cases[variant][0];
    it(`${variant}: ${c.name} with the reduction split (loop budget 300)`, async () => {
      setConvReductionLimits({ loopBudget: 300 });
      await check(c, variant);
      // the forward's K (540) is over one chunk: it ends with the sum of the partials
      setKernelVariant('conv', variant);
      const [x, w] = [upload(randomArr(c.x, 1)), upload(randomArr(c.w, 2))];
      const y = F.conv3d(x, w, null, c.opts);
      expect(runtime().lastContext).toMatch(new RegExp(`\\[${variant}, sum of \\d+ partials\\]$`));
      for (const t of [x, w, y]) t.dispose();
    });
  }
  it('tiled-k32 with 64-row tiles is not offered on a device with 16 KiB of workgroup memory', () => {
    const rt = runtime();
    const real = rt.limits;
    const rtw = rt as unknown as { limits: GPUSupportedLimits };
    const applicable = (c: TileCase) => {
      const [x, w] = [upload(randomArr(c.x, 1)), upload(randomArr(c.w, 2))];
      const { result: y, picks } = recordPicks(() => (c.x.length === 5 ? F.conv3d : F.conv2d)(x, w, null, c.opts));
      for (const t of [x, w, y]) t.dispose();
      return picks[0].applicable;
    };
    // (SwiftShader and llvmpipe have 32 KiB: there it is offered)
    if (real.maxComputeWorkgroupStorageSize >= 17408) expect(applicable(cases['tiled-m16'][0])).toContain('tiled-k32');
    rtw.limits = new Proxy(real, { get: (t, k) => (k === 'maxComputeWorkgroupStorageSize' ? 16384 : Reflect.get(t, k, t)) });
    try {
      // 18 rows: TK 32 at 64 rows needs 17408 bytes
      expect(applicable(cases['tiled-m16'][0])).not.toContain('tiled-k32');
      // 12 rows: 16-row tiles, 11264 bytes
      expect(applicable(cases['tiled-k32'][0])).toContain('tiled-k32');
    } finally {
      rtw.limits = real;
    }
  });

  it(`tiled-m16 is not offered where tiled already uses 16-row tiles (${fewRows.name})`, () => {
    setKernelVariant('conv', null);
    const x = upload(randomArr(fewRows.x, 1));
    const w = upload(randomArr(fewRows.w, 2));
    const { result: y, picks } = recordPicks(() => F.conv2d(x, w, null, fewRows.opts));
    expect(picks[0].applicable).toContain('tiled-k32');
    expect(picks[0].applicable).not.toContain('tiled-m16');
    for (const t of [x, w, y]) t.dispose();
  });
});
