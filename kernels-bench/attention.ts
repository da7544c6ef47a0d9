// Attention benchmark: every variant the kernel registry has for the shape (fused: online softmax,
// K/V tiles in workgroup memory, scores never stored; fused-specialised: the same compiled per head
// dim; composed: matmul + softmax + matmul), forward and forward+backward, at the shapes the models
// run: MedSAM's global blocks (12 heads x 4096 tokens x 64) and windowed blocks (25 windows x 12
// heads x 196 x 64), TransUNet's ViT (12 x 196 x 64), and SAM's mask decoder (8 heads: token-to-
// image 7 x 4096 and image-to-token 4096 x 7 at head dim 16, token self-attention 7 x 7 at head dim
// 32). The composition stores the B*H x Lq x Lk scores, so it is left out where they pass the
// default 128 MiB binding limit (the global blocks). Checked: sampled query rows of the output
// (backward: of dq) against float64 softmax attention over the q, k, v read back.
import { F, randn, type Tensor } from 'medseg';
import type { BenchCase, BenchFamily } from './case.js';
import { relErr, sampleIndices } from './check.js';

interface Shape {
  label: string;
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  D: number;
}

const BINDING_LIMIT = 128 * 1024 * 1024;

/**
 * For query row r (of B*H*Lq): the float64 output row, and where g is given, the row of dq:
 * dq_i = scale sum_j P_ij (g_i . v_j - sum_l P_il g_i . v_l) k_j.
 */
function rowRef(s: Shape, Q: Float32Array, K: Float32Array, V: Float32Array, G: Float32Array | null, r: number): number[] {
  const { Lq, Lk, D } = s;
  const bh = Math.floor(r / Lq);
  const scale = 1 / Math.sqrt(D);
  const q = r * D;
  const sc = new Float64Array(Lk);
  let mx = -Infinity;
  for (let j = 0; j < Lk; j++) {
    let d = 0;
    for (let e = 0; e < D; e++) d += Q[q + e] * K[(bh * Lk + j) * D + e];
    sc[j] = d * scale;
    mx = Math.max(mx, sc[j]);
  }
  let sum = 0;
  for (let j = 0; j < Lk; j++) sum += (sc[j] = Math.exp(sc[j] - mx));
  for (let j = 0; j < Lk; j++) sc[j] /= sum;
  const out = new Array<number>(D).fill(0);
  if (!G) {
    for (let j = 0; j < Lk; j++) for (let e = 0; e < D; e++) out[e] += sc[j] * V[(bh * Lk + j) * D + e];
    return out;
  }
  const dp = new Float64Array(Lk);
  let delta = 0;
  for (let j = 0; j < Lk; j++) {
    let d = 0;
    for (let e = 0; e < D; e++) d += G[q + e] * V[(bh * Lk + j) * D + e];
    dp[j] = d;
    delta += sc[j] * d;
  }
  for (let j = 0; j < Lk; j++) {
    const c = scale * sc[j] * (dp[j] - delta);
    for (let e = 0; e < D; e++) out[e] += c * K[(bh * Lk + j) * D + e];
  }
  return out;
}

function makeCase(s: Shape, backward: boolean): BenchCase {
  const { B, H, Lq, Lk, D } = s;
  const fwdFlops = 4 * B * H * Lq * Lk * D; // q k^T and p v
  const ioBytes = 4 * B * H * (2 * Lq * D + 2 * Lk * D); // read q, k, v; write out
  const scoresBytes = 4 * B * H * Lq * Lk;
  return {
    name: `attention ${s.label}${backward ? ' fwd+bwd' : ''}`,
    registry: 'attention',
    exclude: scoresBytes > BINDING_LIMIT ? { composed: `its ${(scoresBytes / 2 ** 20).toFixed(0)} MiB score matrix passes the 128 MiB binding limit` } : undefined,
    // backward: dq, dk, dv and dp products (2x the forward); the fused kernel also recomputes q k^T
    flops: backward ? 3 * fwdFlops : fwdFlops,
    bytes: backward ? 3 * ioBytes : ioBytes,
    setup() {
      const q = randn([B, H, Lq, D], { seed: 1, requiresGrad: backward });
      const k = randn([B, H, Lk, D], { seed: 2, requiresGrad: backward });
      const v = randn([B, H, Lk, D], { seed: 3, requiresGrad: backward });
      const g = backward ? randn([B, H, Lq, D], { seed: 4 }) : null;
      let o: Tensor | null = null;
      return {
        run() {
          o?.dispose();
          o = F.scaledDotProductAttention(q, k, v);
          if (g) {
            for (const t of [q, k, v]) t.zeroGrad();
            o.backward(g);
          }
        },
        async check() {
          const [Q, K, V] = await Promise.all([q.read(), k.read(), v.read()]);
          const G = g ? await g.read() : null;
          const got = await (g ? q.grad! : o!).read();
          const rows = sampleIndices(B * H * Lq, 12);
          const gotRows: number[] = [];
          const want: number[] = [];
          for (const r of rows) {
            want.push(...rowRef(s, Q, K, V, G, r));
            for (let e = 0; e < D; e++) gotRows.push(got[r * D + e]);
          }
          return relErr(gotRows, want);
        },
        teardown() {
          for (const t of [q.grad, k.grad, v.grad, q, k, v, g, o]) t?.dispose();
        },
      };
    },
  };
}

const SHAPES: Shape[] = [
  { label: 'MedSAM global 12x4096x4096x64', B: 1, H: 12, Lq: 4096, Lk: 4096, D: 64 },
  { label: 'MedSAM windows 25x12x196x196x64', B: 25, H: 12, Lq: 196, Lk: 196, D: 64 },
  { label: 'TransUNet 12x196x196x64', B: 1, H: 12, Lq: 196, Lk: 196, D: 64 },
  { label: 'SAM decoder t2i 8x7x4096x16', B: 1, H: 8, Lq: 7, Lk: 4096, D: 16 },
  { label: 'SAM decoder i2t 8x4096x7x16', B: 1, H: 8, Lq: 4096, Lk: 7, D: 16 },
  { label: 'SAM decoder self 8x7x7x32', B: 1, H: 8, Lq: 7, Lk: 7, D: 32 },
];

const QUICK: Shape = { label: 'small 2x4x64x64x32', B: 2, H: 4, Lq: 64, Lk: 64, D: 32 };

export const family: BenchFamily = {
  cases: SHAPES.flatMap((s) => [makeCase(s, false), makeCase(s, true)]),
  quick: [makeCase(QUICK, false), makeCase(QUICK, true)],
};
