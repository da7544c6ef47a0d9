// Float64 references for attention and SAM's helpers, written from their definitions with plain
// loops: scaled dot-product attention with an additive broadcast mask (and with the decomposed
// relative-position bias in the fused kernel's form), SAM's get_rel_pos (with the
// 1D linear resampling of the table, align_corners=False) and add_decomposed_rel_pos, and window
// partition / unpartition with zero padding.
import { Arr, broadcastShape, size } from './ndarray.js';

/** `a` broadcast to `shape` as a dense array (`a`'s own data, read only, when nothing is broadcast). */
function expandTo(a: Arr, shape: readonly number[]): Float64Array {
  if (a.size === size(shape) && a.shape.filter((d) => d !== 1).join() === shape.filter((d) => d !== 1).join()) return a.data;
  // a's strides in `shape`'s dims (0 where broadcast), walked row by row with an odometer
  const nd = shape.length;
  const off = nd - a.ndim;
  const st = new Array<number>(nd).fill(0);
  for (let i = a.ndim - 1, acc = 1; i >= 0; acc *= a.shape[i], i--) st[off + i] = a.shape[i] === 1 ? 0 : acc;
  const out = new Float64Array(size(shape));
  const last = shape[nd - 1];
  const sl = st[nd - 1];
  const idx = new Array<number>(nd).fill(0);
  for (let o = 0, src = 0; o < out.length; o += last) {
    for (let x = 0; x < last; x++) out[o + x] = a.data[src + x * sl];
    for (let d = nd - 2; d >= 0; d--) {
      src += st[d];
      if (++idx[d] < shape[d]) break;
      src -= st[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** softmax(scale * q k^T + mask) v over [..., L, D] operands with broadcast leading dims. */
export function attention(q: Arr, k: Arr, v: Arr, mask: Arr | null, scale?: number): Arr {
  const D = q.shape[q.ndim - 1];
  const Lq = q.shape[q.ndim - 2];
  const Lk = k.shape[k.ndim - 2];
  const sc = scale ?? 1 / Math.sqrt(D);
  const lead = broadcastShape(q.shape.slice(0, -2), k.shape.slice(0, -2), v.shape.slice(0, -2), mask ? mask.shape.slice(0, -2) : []);
  const nb = size(lead);
  const Q = expandTo(q, [...lead, Lq, D]);
  const K = expandTo(k, [...lead, Lk, D]);
  const V = expandTo(v, [...lead, Lk, D]);
  const Mk = mask ? expandTo(mask, [...lead, Lq, Lk]) : null;
  const out = Arr.zeros([...lead, Lq, D]);
  const s = new Float64Array(Lk);
  for (let bi = 0; bi < nb; bi++) {
    for (let i = 0; i < Lq; i++) {
      const qi = (bi * Lq + i) * D;
      let m = -Infinity;
      for (let j = 0; j < Lk; j++) {
        const kj = (bi * Lk + j) * D;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += Q[qi + d] * K[kj + d];
        s[j] = sc * dot + (Mk ? Mk[(bi * Lq + i) * Lk + j] : 0);
        m = Math.max(m, s[j]);
      }
      let z = 0;
      for (let j = 0; j < Lk; j++) {
        s[j] = Math.exp(s[j] - m);
        z += s[j];
      }
      for (let j = 0; j < Lk; j++) {
        const p = s[j] / z;
        const vj = (bi * Lk + j) * D;
        for (let d = 0; d < D; d++) out.data[qi + d] += p * V[vj + d];
      }
    }
  }
  return out;
}

/**
 * Attention with SAM's decomposed relative position as the fused kernel takes it: rel [..., Lq, kh + kw]
 * (rel_h and rel_w side by side) adds rel[..., i, ky] + rel[..., i, kh + kx] to score (i, ky * kw + kx),
 * plus an optional additive mask.
 */
export function decomposedAttention(q: Arr, k: Arr, v: Arr, rel: Arr, kh: number, kw: number, mask: Arr | null = null, scale?: number): Arr {
  const Lq = rel.shape[rel.ndim - 2];
  const lead = rel.shape.slice(0, -2);
  const nb = size(lead);
  const M = denseMask(mask, [...lead, Lq, kh * kw]);
  for (let b = 0; b < nb; b++)
    for (let i = 0; i < Lq; i++) {
      const r = (b * Lq + i) * (kh + kw);
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++) M[(b * Lq + i) * kh * kw + ky * kw + kx] += rel.data[r + ky] + rel.data[r + kh + kx];
    }
  return attention(q, k, v, new Arr(M, [...lead, Lq, kh * kw]), scale);
}

/** A fresh dense copy of `mask` broadcast to `shape` (zeros without a mask). */
function denseMask(mask: Arr | null, shape: readonly number[]): Float64Array {
  if (!mask) return new Float64Array(size(shape));
  return Float64Array.from(expandTo(mask, shape));
}

/** SAM's get_rel_pos: table [L, C] -> [qSize, kSize, C], resampling the table to 2 max(q, k) - 1 rows. */
export function getRelPos(qSize: number, kSize: number, table: Arr): Arr {
  const [L, C] = table.shape;
  const M = 2 * Math.max(qSize, kSize) - 1;
  // F.interpolate(mode='linear', size=M, align_corners=False) along the table's length.
  const res = Arr.zeros([M, C]);
  for (let m = 0; m < M; m++) {
    if (L === M) {
      for (let c = 0; c < C; c++) res.data[m * C + c] = table.data[m * C + c];
      continue;
    }
    const src = Math.max(0, ((m + 0.5) * L) / M - 0.5);
    const l0 = Math.floor(src);
    const l1 = Math.min(l0 + 1, L - 1);
    const w = src - l0;
    for (let c = 0; c < C; c++) res.data[m * C + c] = (1 - w) * table.data[l0 * C + c] + w * table.data[l1 * C + c];
  }
  const f = Math.fround;
  const out = Arr.zeros([qSize, kSize, C]);
  const qs = f(Math.max(kSize / qSize, 1));
  const ks = f(Math.max(qSize / kSize, 1));
  for (let i = 0; i < qSize; i++) {
    for (let j = 0; j < kSize; j++) {
      const idx = Math.trunc(f(f(f(i * qs) - f(j * ks)) + f((kSize - 1) * ks)));
      for (let c = 0; c < C; c++) out.data[(i * kSize + j) * C + c] = res.data[idx * C + c];
    }
  }
  return out;
}

/**
 * SAM's add_decomposed_rel_pos: attn [B, qh*qw, kh*kw] + rel_h[b, (y,x), ky] + rel_w[b, (y,x), kx],
 * rel_h = sum_c q[b, y, x, c] Rh[y, ky, c], rel_w = sum_c q[b, y, x, c] Rw[x, kx, c]; q is [B, qh*qw, C].
 */
export function addDecomposedRelPos(attn: Arr, q: Arr, tableH: Arr, tableW: Arr, qSize: [number, number], kSize: [number, number]): Arr {
  const [qh, qw] = qSize;
  const [kh, kw] = kSize;
  const Rh = getRelPos(qh, kh, tableH);
  const Rw = getRelPos(qw, kw, tableW);
  const B = q.shape[0];
  const C = q.shape[2];
  const out = new Arr(Float64Array.from(attn.data), attn.shape);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < qh; y++) {
      for (let x = 0; x < qw; x++) {
        const i = y * qw + x;
        for (let ky = 0; ky < kh; ky++) {
          let rh = 0;
          for (let c = 0; c < C; c++) rh += q.data[(b * qh * qw + i) * C + c] * Rh.data[(y * kh + ky) * C + c];
          for (let kx = 0; kx < kw; kx++) {
            let rw = 0;
            for (let c = 0; c < C; c++) rw += q.data[(b * qh * qw + i) * C + c] * Rw.data[(x * kw + kx) * C + c];
            out.data[(b * qh * qw + i) * kh * kw + ky * kw + kx] += rh + rw;
          }
        }
      }
    }
  }
  return out;
}

/** SAM's attention with rel-pos: q [B, Lq, C], k, v [B, Lk, C]; softmax(scale q k^T + rel + mask) v, mask [Lq, Lk]. */
export function relPosAttention(q: Arr, k: Arr, v: Arr, tableH: Arr, tableW: Arr, qSize: [number, number], kSize: [number, number], scale: number, mask?: Arr): Arr {
  const B = q.shape[0];
  const Lq = q.shape[1];
  const Lk = k.shape[1];
  const C = q.shape[2];
  const scores = Arr.zeros([B, Lq, Lk]);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < Lq; i++)
      for (let j = 0; j < Lk; j++) {
        let dot = 0;
        for (let c = 0; c < C; c++) dot += q.data[(b * Lq + i) * C + c] * k.data[(b * Lk + j) * C + c];
        scores.data[(b * Lq + i) * Lk + j] = scale * dot + (mask ? mask.data[i * Lk + j] : 0);
      }
  const biased = addDecomposedRelPos(scores, q, tableH, tableW, qSize, kSize);
  const out = Arr.zeros([B, Lq, C]);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < Lq; i++) {
      const row = biased.data.subarray((b * Lq + i) * Lk, (b * Lq + i + 1) * Lk);
      const m = Math.max(...row);
      let z = 0;
      for (let j = 0; j < Lk; j++) z += Math.exp(row[j] - m);
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let j = 0; j < Lk; j++) acc += (Math.exp(row[j] - m) / z) * v.data[(b * Lk + j) * C + c];
        out.data[(b * Lq + i) * C + c] = acc;
      }
    }
  return out;
}

/** SAM's window_partition: x [B, H, W, C] zero-padded to multiples of ws, -> [B*nh*nw, ws, ws, C]. */
export function windowPartition(x: Arr, ws: number): Arr {
  const [B, H, W, C] = x.shape;
  const nh = Math.ceil(H / ws);
  const nw = Math.ceil(W / ws);
  const out = Arr.zeros([B * nh * nw, ws, ws, C]);
  for (let b = 0; b < B; b++)
    for (let wr = 0; wr < nh; wr++)
      for (let wc = 0; wc < nw; wc++)
        for (let r = 0; r < ws; r++)
          for (let c = 0; c < ws; c++) {
            const y = wr * ws + r;
            const xx = wc * ws + c;
            if (y >= H || xx >= W) continue;
            for (let ch = 0; ch < C; ch++) {
              out.data[((((b * nh + wr) * nw + wc) * ws + r) * ws + c) * C + ch] = x.data[((b * H + y) * W + xx) * C + ch];
            }
          }
  return out;
}

/** SAM's window_unpartition: windows [B*nh*nw, ws, ws, C] -> [B, H, W, C], dropping the padding. */
export function windowUnpartition(win: Arr, ws: number, H: number, W: number): Arr {
  const nh = Math.ceil(H / ws);
  const nw = Math.ceil(W / ws);
  const C = win.shape[3];
  const B = win.shape[0] / (nh * nw);
  const out = Arr.zeros([B, H, W, C]);
  for (let b = 0; b < B; b++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++)
        for (let ch = 0; ch < C; ch++) {
          const w = (b * nh + Math.floor(y / ws)) * nw + Math.floor(x / ws);
          out.data[((b * H + y) * W + x) * C + ch] = win.data[((w * ws + (y % ws)) * ws + (x % ws)) * C + ch];
        }
  return out;
}
