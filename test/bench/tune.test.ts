// The autotuner on the kernel-variant registry (src/gpu/tune.ts): with an injected fake timer it
// picks the fastest variant by that timer per shape class (and picks differently when the timings
// differ); a tuned table makes matmul, conv and attention run the tuned variant (the registry's pick
// records say 'tuned'), and every variant's result stays within tolerance of the float64
// reference; tables from another adapter, or naming unknown variants, are refused. matmul's
// tile-size variants (tiled, tiled-m16, tiled-k32) are among the variants tuned (conv's tiled-k32
// too; its tiled-m16 needs more than the case's 5 rows: test/ops/conv-tiles.test.ts), and each
// also runs a linear whose K crosses one of its K slices (each slices K by its own loop-pass count,
// tiledKSlice), so it continues its sums over launches and adds the bias once.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { F, type Tensor } from '../../src/index.js';
import { forcedVariant, recordPicks, setKernelVariant } from '../../src/gpu/variants.js';
import { adapterKey, parseTunedTable, tune, useTunedTable, type TunedTable, type TuneTimer } from '../../src/gpu/tune.js';
import { runtime } from '../../src/gpu/runtime.js';
import { expectClose, ready, upload } from '../helpers.js';
import { randomArr, type Arr } from '../reference/ndarray.js';
import { linear as refLinear, matmul as refMatmul } from '../reference/ops.js';
import { tiledKSlice } from '../../src/ops/matmul.js';
import { conv as refConv } from '../reference/conv.js';
import { attention as refAttention } from '../reference/attention.js';
import { reductionTol } from '../tolerance.js';

beforeAll(ready);
afterEach(() => {
  useTunedTable(null);
  for (const f of ['matmul', 'conv', 'attention']) setKernelVariant(f, null);
});

/** A timer that runs the workload once (so it really executes) and returns a made-up cost for the forced variant. */
function fakeTimer(family: string, cost: Record<string, number>): TuneTimer {
  return async (run) => {
    run();
    await runtime().sync();
    const v = forcedVariant(family);
    if (!v || !(v in cost)) throw new Error(`fake timer: no cost for ${family} variant ${v}`);
    return cost[v];
  };
}

const A = randomArr([48, 40], 1);
const B = randomArr([40, 56], 2);
const X = randomArr([1, 3, 6, 7, 8], 3);
const W = randomArr([5, 3, 3, 3, 3], 4);
const Q = randomArr([1, 2, 9, 16], 5);
const K = randomArr([1, 2, 11, 16], 6);
const V = randomArr([1, 2, 11, 16], 7);

/** The array on the GPU, uploaded once. */
const gpu = (() => {
  const held = new Map<Arr, Tensor>();
  return (a: Arr) => held.get(a) ?? (held.set(a, upload(a)), held.get(a)!);
})();

interface OpUnderTest {
  family: string;
  run: () => Tensor;
  ref: () => Arr;
  tolK: number;
}

const ops: OpUnderTest[] = [
  { family: 'matmul', run: () => F.matmul(gpu(A), gpu(B)), ref: () => refMatmul(A, B), tolK: 40 },
  { family: 'conv', run: () => F.conv3d(gpu(X), gpu(W), null, { padding: 1 }), ref: () => refConv(X, W, null, { padBefore: [1, 1, 1] }), tolK: 81 },
  { family: 'attention', run: () => F.scaledDotProductAttention(gpu(Q), gpu(K), gpu(V)), ref: () => refAttention(Q, K, V, null), tolK: 16 * 11 },
];

const workload = (op: OpUnderTest) => ({ label: op.family, run: () => op.run().dispose() });

describe('autotuner', () => {
  it('picks the fastest variant by its timer, per shape class, and follows the timings (tile sizes too)', async () => {
    const cost = { naive: 3, blocked: 1, tiled: 2, 'tiled-m16': 4, 'tiled-k32': 1.5 };
    const fast = await tune({ matmul: [workload(ops[0])] }, fakeTimer('matmul', cost));
    const cls = Object.keys(fast.families.matmul);
    expect(cls).toEqual(['64x64x64']);
    expect(fast.families.matmul[cls[0]].variant).toBe('blocked');
    expect(fast.families.matmul[cls[0]].ms).toEqual({ blocked: 1000, 'tiled-k32': 1500, tiled: 2000, naive: 3000, 'tiled-m16': 4000 });
    // where the tile sizes time differently, another tile wins
    const other = await tune({ matmul: [workload(ops[0])] }, fakeTimer('matmul', { ...cost, blocked: 6, 'tiled-k32': 3.5, 'tiled-m16': 0.5 }));
    expect(other.families.matmul[cls[0]].variant).toBe('tiled-m16');
    expect(fast.adapter).toBe(adapterKey());
  });

  it('slices K within the loop budget for every tile knob setting', () => {
    expect(tiledKSlice({ TK: 16, TM: 4 })).toBe(2416);
    for (const TK of [8, 16, 32] as const) for (const TM of [1, 2, 4] as const) {
      const k = tiledKSlice({ TK, TM });
      expect(k % TK, `TK ${TK} TM ${TM}`).toBe(0);
      // _gemm_tile.wgsl's count per TK-deep slice, plus matmul_tiled's own 64
      const perSlice = 1 + (Math.ceil((TK * 16 * TM) / 256) + 1) + ((TK * 64) / 256 + 1) + (TK + 1) + TK * (TM + 1);
      expect((k / TK) * perSlice + 64, `TK ${TK} TM ${TM}`).toBeLessThanOrEqual(16384);
    }
  });

  for (const op of ops) {
    it(`${op.family}: the tuned choice is what the op runs, and every variant matches the reference`, async () => {
      const want = op.ref();
      const variants = recordPicks(() => op.run().dispose()).picks.filter((p) => p.family === op.family)[0].applicable;
      expect(variants.length).toBeGreaterThan(1);
      for (const v of variants) {
        // each variant in turn is made the fastest by the fake timer, tuned, and must then be what
        // runs; attention's composition may not stand for a class (classWide: false): the next
        // fastest is picked instead
        const cost = Object.fromEntries(variants.map((u, i) => [u, u === v ? 1 : 5 + i]));
        const table = await tune({ [op.family]: [workload(op)] }, fakeTimer(op.family, cost));
        if (op.family === 'attention' && v === 'composed') {
          const allowed = variants.filter((u) => u !== 'composed');
          expect(Object.values(table.families.attention).map((e) => e.variant)).toEqual([allowed[0]]);
          useTunedTable(table);
          const { result: y, picks } = recordPicks(op.run);
          expect(picks.filter((p) => p.family === 'attention').map((p) => [p.variant, p.source])).toEqual([[allowed[0], 'tuned']]);
          y.dispose();
          useTunedTable(null);
          setKernelVariant('attention', 'composed');
          const yc = op.run();
          setKernelVariant('attention', null);
          expectClose(await yc.read(), want.f32(), reductionTol(op.tolK), 'attention composed (forced)');
          yc.dispose();
          continue;
        }
        useTunedTable(table);
        const { result: y, picks } = recordPicks(op.run);
        const mine = picks.filter((p) => p.family === op.family);
        expect(mine.length).toBeGreaterThan(0);
        for (const p of mine) expect([p.variant, p.source]).toEqual([v, 'tuned']);
        expectClose(await y.read(), want.f32(), reductionTol(op.tolK), `${op.family} tuned to ${v}`);
        y.dispose();
        useTunedTable(null);
      }
    });
  }

  it('every tile-size variant continues its sums over K slices and adds the bias once', async () => {
    const knobs: Record<string, Parameters<typeof tiledKSlice>[0]> = {
      tiled: { TK: 16, TM: 4 }, 'tiled-m16': { TK: 16, TM: 1 }, 'tiled-k32': { TK: 32, TM: 4 },
    };
    for (const [v, k] of Object.entries(knobs)) {
      const LK = tiledKSlice(k) + 37;
      const [X, Wt, b] = [randomArr([5, LK], 21), randomArr([3, LK], 22), randomArr([3], 23, 5, 6)];
      const [x, w, bias] = [X, Wt, b].map((t) => upload(t));
      setKernelVariant('matmul', v);
      const { result: y, picks } = recordPicks(() => F.linear(x, w, bias));
      expect(picks.map((p) => p.variant)).toEqual([v]);
      expectClose(await y.read(), refLinear(X, Wt, b).f32(), reductionTol(LK), `linear [${v}] K ${LK} (${Math.ceil(LK / tiledKSlice(k))} slices)`);
      for (const t of [x, w, bias, y]) t.dispose();
    }
  });

  it('refuses tables from another adapter and unknown variants', () => {
    const t: TunedTable = { version: 1, adapter: 'some-other-gpu', families: { matmul: { '64x64x64': { variant: 'naive', ms: {} } } } };
    expect(() => useTunedTable(t)).toThrow(/measured on 'some-other-gpu'/);
    expect(() => parseTunedTable({ ...t, families: { matmul: { '64x64x64': { variant: 'warp', ms: {} } } } })).toThrow(/unknown variant 'warp'/);
  });
});
