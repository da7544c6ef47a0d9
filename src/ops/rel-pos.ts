// SAM's decomposed relative position (segment-anything image_encoder.py: get_rel_pos,
// add_decomposed_rel_pos), with gradients to q and to both tables.
//   getRelPos(q, k, table [L, C]) -> R [q, k, C], R[i, j] = T'[trunc(i max(k/q, 1) - j max(q/k, 1)
//     + (k - 1) max(q/k, 1))], where T' is the table resampled to M = 2 max(q, k) - 1 rows by 1D
//     linear interpolation (align_corners=False) when L != M. Both steps are linear in the table, so
//     R = A @ table with a constant [q*k, L] matrix A built once per (q, k, L): its backward is
//     A^T @ dR, the scatter-add into the table rows, with no atomics.
//   rel_h[b, (y, x), ky] = sum_c q[b, (y, x), c] Rh[y, ky, c], rel_w[b, (y, x), kx] = sum_c q[b, (y, x), c] Rw[x, kx, c]
//     (batched matmuls over y, resp. x), and scores[b, (y, x), (ky, kx)] += rel_h[..., ky] + rel_w[..., kx].
// The sum enters the fused attention as its decomposed bias (rel_h and rel_w side by side,
// [..., Lq, kh + kw]), so the Lq x Lk bias (12 x 4096 x 4096 in SAM's global blocks) is never stored.
import { runtime, type Runtime } from '../gpu/runtime.js';
import { Tensor, shapeStr, tensor } from '../tensor.js';
import { keep, scope } from '../scope.js';
import { add } from './elementwise.js';
import { matmul } from './matmul.js';
import { cat, permute, reshape, transpose } from './shape.js';
import { scaledDotProductAttention, type AttentionOptions } from './attention.js';

/** The constant [qSize * kSize, L] lookup-and-resample matrix of getRelPos (cached per runtime). */
const lookupCache = new WeakMap<Runtime, Map<string, Tensor>>();

function lookupMatrix(qSize: number, kSize: number, L: number): Tensor {
  const rt = runtime();
  let cache = lookupCache.get(rt);
  if (!cache) lookupCache.set(rt, (cache = new Map()));
  const key = `${qSize},${kSize},${L}`;
  let a = cache.get(key);
  if (a) return a;
  const M = 2 * Math.max(qSize, kSize) - 1;
  // W [M, L]: F.interpolate(mode='linear', size=M, align_corners=False) along the table's length.
  const W = new Float64Array(M * L);
  for (let m = 0; m < M; m++) {
    if (L === M) {
      W[m * L + m] = 1;
      continue;
    }
    const src = Math.max(0, ((m + 0.5) * L) / M - 0.5);
    const l0 = Math.floor(src);
    const l1 = Math.min(l0 + 1, L - 1);
    const w = src - l0;
    W[m * L + l0] += 1 - w;
    W[m * L + l1] += w;
  }
  // Coordinates as PyTorch computes them (float32), then truncated to an index.
  const f = Math.fround;
  const qs = f(Math.max(kSize / qSize, 1));
  const ks = f(Math.max(qSize / kSize, 1));
  const data = new Float32Array(qSize * kSize * L);
  for (let i = 0; i < qSize; i++) {
    for (let j = 0; j < kSize; j++) {
      const m = Math.trunc(f(f(f(i * qs) - f(j * ks)) + f((kSize - 1) * ks)));
      for (let l = 0; l < L; l++) data[(i * kSize + j) * L + l] = W[m * L + l];
    }
  }
  a = keep(tensor(data, [qSize * kSize, L]));
  cache.set(key, a);
  return a;
}

/** SAM's get_rel_pos: relative positional embeddings [qSize, kSize, C] from a table [L, C]. */
export function getRelPos(qSize: number, kSize: number, relPos: Tensor): Tensor {
  if (relPos.ndim !== 2) throw new Error(`getRelPos: the table must be [L, C], got ${shapeStr(relPos.shape)}`);
  const [L, C] = relPos.shape;
  return scope(() => reshape(matmul(lookupMatrix(qSize, kSize, L), relPos), [qSize, kSize, C]));
}

/**
 * rel_h and rel_w of SAM's add_decomposed_rel_pos, side by side: q [..., qh * qw, C] (unscaled)
 * -> [..., qh * qw, kh + kw], the decomposed bias of scaledDotProductAttention.
 */
export function decomposedRelPos(q: Tensor, relPosH: Tensor, relPosW: Tensor, qSize: [number, number], kSize: [number, number]): Tensor {
  const [qh, qw] = qSize;
  const [kh, kw] = kSize;
  const C = q.shape[q.ndim - 1];
  const lead = q.shape.slice(0, -2);
  if (q.shape[q.ndim - 2] !== qh * qw) throw new Error(`decomposedRelPos: q ${shapeStr(q.shape)} does not hold ${qh} x ${qw} tokens`);
  return scope(() => {
    const Rh = getRelPos(qh, kh, relPosH); // [qh, kh, C]
    const Rw = getRelPos(qw, kw, relPosW); // [qw, kw, C]
    if (Rh.shape[2] !== C || Rw.shape[2] !== C) throw new Error(`decomposedRelPos: tables ${shapeStr(relPosH.shape)}, ${shapeStr(relPosW.shape)} do not have q's ${C} channels`);
    const q4 = reshape(q, [-1, qh, qw, C]);
    // rel_h: batch (b, y), [qw, C] @ [C, kh]; rel_w: batch (b, x), [qh, C] @ [C, kw].
    const relH = matmul(q4, transpose(Rh, -1, -2)); // [B, qh, qw, kh]
    const relW = permute(matmul(permute(q4, [0, 2, 1, 3]), transpose(Rw, -1, -2)), [0, 2, 1, 3]); // [B, qh, qw, kw]
    return reshape(cat([relH, relW], -1), [...lead, qh * qw, kh + kw]);
  });
}

/**
 * SAM's add_decomposed_rel_pos: attn [B, qh*qw, kh*kw] + rel_h[..., :, None] + rel_w[..., None, :]
 * (the composed form; the fused attention takes decomposedRelPos's output instead).
 */
export function addDecomposedRelPos(attn: Tensor, q: Tensor, relPosH: Tensor, relPosW: Tensor, qSize: [number, number], kSize: [number, number]): Tensor {
  const [kh, kw] = kSize;
  return scope(() => {
    const rel = decomposedRelPos(q, relPosH, relPosW, qSize, kSize);
    const lead = rel.shape.slice(0, -1);
    const rh = reshape(rel.narrow(-1, 0, kh), [...lead, kh, 1]);
    const rw = reshape(rel.narrow(-1, kh, kw), [...lead, 1, kw]);
    return add(attn, reshape(add(rh, rw), [...lead, kh * kw]));
  });
}

/**
 * SAM's attention with decomposed relative position: softmax(scale q k^T + rel_h + rel_w) v, with
 * q [..., qh*qw, C], k and v [..., kh*kw, C] and the rel-pos computed from the unscaled q.
 */
export function relPosAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  relPosH: Tensor,
  relPosW: Tensor,
  qSize: [number, number],
  kSize: [number, number],
  options: Pick<AttentionOptions, 'scale' | 'attnMask'> = {},
): Tensor {
  return scope(() => scaledDotProductAttention(q, k, v, { ...options, decomposedBias: { rel: decomposedRelPos(q, relPosH, relPosW, qSize, kSize), kh: kSize[0], kw: kSize[1] } }));
}
