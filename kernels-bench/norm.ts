// Normalisation benchmarks at the models' shapes, in every variant the registry has for them
// (serial, workgroup, chunked rows): V-Net's BatchNorm3d over 16 channels of a 64x128x128 volume
// (few very long rows), TransUNet's GroupNorm(32) on the ResNet stem, SAM's LayerNorm2d on the
// 256x64x64 neck and LayerNorm over 4096x768 tokens. Bytes: input read twice (statistics) and once
// more with the output written; FLOPs: about 8 per element. Checked: sampled outputs against
// float64 statistics of their group (channel, group, position or row) over the input read back.
import { F, ones, randn, zeros, type Tensor } from 'medseg';
import type { BenchCase, BenchFamily } from './case.js';
import { prod, relErr, sampleIndices } from './check.js';

type Kind = 'batch' | 'group' | 'layer2d' | 'layer';

interface Shape {
  name: string;
  kind: Kind;
  shape: number[];
  groups?: number;
  eps: number;
}

/** The flat indices normalised together with flat index f, and f's affine channel. */
function groupOf(s: Shape, f: number): { key: string; members: () => Iterable<number>; ch: number } {
  const [N, C] = s.shape;
  if (s.kind === 'layer') {
    const L = s.shape[s.shape.length - 1];
    const r = Math.floor(f / L);
    return { key: `${r}`, ch: f % L, members: function* () { for (let l = 0; l < L; l++) yield r * L + l; } };
  }
  const S = prod(s.shape.slice(2));
  const n = Math.floor(f / (C * S));
  const c = Math.floor(f / S) % C;
  const sp = f % S;
  if (s.kind === 'batch') return { key: `${c}`, ch: c, members: function* () { for (let m = 0; m < N; m++) for (let i = 0; i < S; i++) yield (m * C + c) * S + i; } };
  if (s.kind === 'layer2d') return { key: `${n},${sp}`, ch: c, members: function* () { for (let k = 0; k < C; k++) yield (n * C + k) * S + sp; } };
  const per = C / s.groups!;
  const g = Math.floor(c / per);
  return { key: `${n},${g}`, ch: c, members: function* () { for (let k = g * per; k < (g + 1) * per; k++) for (let i = 0; i < S; i++) yield (n * C + k) * S + i; } };
}

function normCase(s: Shape): BenchCase {
  const n = prod(s.shape);
  const channels = s.kind === 'layer' ? s.shape[s.shape.length - 1] : s.shape[1];
  return {
    name: s.name,
    registry: 'norm',
    flops: 8 * n,
    bytes: 4 * 4 * n,
    setup() {
      const x = randn(s.shape, { seed: 1 });
      const w = randn([channels], { seed: 2 });
      const b = randn([channels], { seed: 3 });
      const rm = zeros([channels]);
      const rv = ones([channels]);
      let y: Tensor | null = null;
      const op = (): Tensor => {
        switch (s.kind) {
          case 'batch': return F.batchNorm(x, rm, rv, w, b, true, 0.1, s.eps);
          case 'group': return F.groupNorm(x, s.groups!, w, b, s.eps);
          case 'layer2d': return F.layerNorm2d(x, w, b, s.eps);
          case 'layer': return F.layerNorm(x, [channels], w, b, s.eps);
        }
      };
      return {
        run() {
          y?.dispose();
          y = op();
        },
        async check() {
          const [X, Y, Wt, B] = await Promise.all([x.read(), y!.read(), w.read(), b.read()]);
          const stats = new Map<string, [number, number]>();
          const idx = sampleIndices(n, 24);
          const want = idx.map((f) => {
            const g = groupOf(s, f);
            let st = stats.get(g.key);
            if (!st) {
              let sum = 0, cnt = 0;
              for (const i of g.members()) { sum += X[i]; cnt++; }
              const mean = sum / cnt;
              let ss = 0;
              for (const i of g.members()) ss += (X[i] - mean) ** 2;
              st = [mean, ss / cnt];
              stats.set(g.key, st);
            }
            return ((X[f] - st[0]) / Math.sqrt(st[1] + s.eps)) * Wt[g.ch] + B[g.ch];
          });
          return relErr(idx.map((f) => Y[f]), want);
        },
        teardown() {
          for (const t of [x, w, b, rm, rv, y]) t?.dispose();
        },
      };
    },
  };
}

const SHAPES: Shape[] = [
  { name: 'batchNorm3d train 16 ch @ 64x128x128', kind: 'batch', shape: [1, 16, 64, 128, 128], eps: 1e-5 },
  { name: 'groupNorm(32) 64 ch @ 112x112', kind: 'group', shape: [1, 64, 112, 112], groups: 32, eps: 1e-6 },
  { name: 'layerNorm2d 256 ch @ 64x64', kind: 'layer2d', shape: [1, 256, 64, 64], eps: 1e-6 },
  { name: 'layerNorm 4096x768', kind: 'layer', shape: [4096, 768], eps: 1e-5 },
];

const QUICK: Shape[] = [
  { name: 'batchNorm3d train 8 ch @ 16x32x32', kind: 'batch', shape: [1, 8, 16, 32, 32], eps: 1e-5 },
];

export const family: BenchFamily = { cases: SHAPES.map(normCase), quick: QUICK.map(normCase) };
