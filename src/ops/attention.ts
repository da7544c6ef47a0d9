// Scaled dot-product attention (torch.nn.functional.scaled_dot_product_attention without dropout
// or causal masking): out = softmax(scale * q k^T + bias) v over [..., L, D] operands with up to two
// leading dims (broadcast between q, k, v and the mask). The bias is an additive float `attnMask`
// broadcastable to [..., Lq, Lk], and/or SAM's decomposed relative position (see rel-pos.ts), which
// enters as `decomposedBias` so the Lq x Lk bias is never stored either.
// Two variants: 'fused' (shaders/attention.wgsl forward with online softmax; backward in
// shaders/attention_backward.wgsl recomputes scores tile by tile from the saved row log-sum-exp) and
// 'composed' (matmul + softmax + matmul from the existing ops; the reference for tests and
// benchmarks, and the fallback for head dims over 128).
import { noGrad, record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor, contiguousStrides, shapeStr } from '../tensor.js';
import { broadcastShapes, broadcastStrides } from './dispatch.js';
import { add, mul } from './elementwise.js';
import { matmul } from './matmul.js';
import { clone, narrow, reshape, sumToShape, transpose } from './shape.js';
import { softmax } from './softmax.js';

export type AttentionVariant = 'fused' | 'composed';

let forcedVariant: AttentionVariant | null = null;

/** Forces one variant (tests, benchmarks); null restores the automatic choice. */
export function setAttentionVariant(v: AttentionVariant | null): void {
  forcedVariant = v;
}

let forcedSpecialize: boolean | null = null;

/**
 * Whether the fused kernels are compiled per head dim (constant loop bounds, faster on GPUs) or
 * read it from the uniform (one pipeline for all head dims; the default on CPU adapters, where a
 * pipeline takes seconds to compile). null restores the automatic choice.
 */
export function setAttentionSpecialization(on: boolean | null): void {
  forcedSpecialize = on;
}

function specialize(): boolean {
  return forcedSpecialize ?? !/swiftshader|llvmpipe|lavapipe|softpipe/i.test(runtime().adapterName);
}

/**
 * SAM's decomposed relative position as a bias: for query i and key j = ky * kw + kx,
 * bias[..., i, j] = rel[..., i, ky] + rel[..., i, kh + kx]; rel is [..., Lq, kh + kw] (rel_h and
 * rel_w side by side, leading dims equal to the attention's) and Lk = kh * kw.
 */
export interface DecomposedBias {
  rel: Tensor;
  kh: number;
  kw: number;
}

export interface AttentionOptions {
  /** additive float mask broadcastable to [..., Lq, Lk] (PyTorch's attn_mask) */
  attnMask?: Tensor | null;
  /** defaults to 1 / sqrt(D) */
  scale?: number;
  decomposedBias?: DecomposedBias | null;
}

const MAX_FUSED_DIM = 128;

/** torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask, scale=scale). */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const mask = options.attnMask ?? null;
  const db = options.decomposedBias ?? null;
  const name = 'scaledDotProductAttention';
  const where = () => `${name}(q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)}${mask ? `, attnMask ${shapeStr(mask.shape)}` : ''})`;
  for (const t of [q, k, v]) {
    if (t.ndim < 2 || t.ndim > 4) throw new Error(`${where()}: q, k and v need 2 to 4 dims ([..., L, D] with up to two leading dims)`);
  }
  const D = q.shape[q.ndim - 1];
  const Lq = q.shape[q.ndim - 2];
  const Lk = k.shape[k.ndim - 2];
  if (k.shape[k.ndim - 1] !== D) throw new Error(`${where()}: q and k have different head dims`);
  if (v.shape[v.ndim - 2] !== Lk) throw new Error(`${where()}: k and v have different lengths`);
  if (v.shape[v.ndim - 1] !== D) throw new Error(`${where()}: v's head dim must equal q's (${D})`);
  if (mask && (mask.ndim < 1 || mask.ndim > 4)) throw new Error(`${where()}: attnMask needs 1 to 4 dims`);
  let lead: number[] = [];
  let ok = true;
  try {
    lead = broadcastShapes(q.shape.slice(0, -2), k.shape.slice(0, -2), v.shape.slice(0, -2), mask ? mask.shape.slice(0, -2) : []);
    if (mask) ok = broadcastShapes(mask.shape.slice(-2), [Lq, Lk]).join() === [Lq, Lk].join();
  } catch {
    ok = false;
  }
  if (!ok) throw new Error(`${where()}: the operands do not broadcast to [..., ${Lq}, ${Lk}] scores`);
  if (lead.length > 2) throw new Error(`${where()}: at most two leading dims`);
  if (db) {
    const want = [...lead, Lq, db.kh + db.kw];
    if (db.kh * db.kw !== Lk || db.rel.shape.join() !== want.join()) {
      throw new Error(`${where()}: decomposedBias.rel ${shapeStr(db.rel.shape)} must be ${shapeStr(want)} with kh * kw = ${Lk}`);
    }
  }
  const scale = options.scale ?? 1 / Math.sqrt(D);
  const variant = forcedVariant ?? 'fused';
  if (variant === 'composed' || D > MAX_FUSED_DIM || D === 0) return composed(q, k, v, mask, db, scale);
  return fused(q, k, v, mask, db, scale, lead);
}

/** The reference composition: softmax(scale * q k^T + bias) v from matmul, softmax and adds. */
function composed(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, db: DecomposedBias | null, scale: number): Tensor {
  const temps: Tensor[] = [];
  const t = (x: Tensor) => (temps.push(x), x);
  const kt = t(transpose(k, -1, -2));
  let s = t(mul(t(matmul(q, kt)), scale));
  if (mask) s = t(add(s, mask));
  if (db) {
    const Lq = q.shape[q.ndim - 2];
    const lead = db.rel.shape.slice(0, -2);
    const rh = t(reshape(t(narrow(db.rel, -1, 0, db.kh)), [...lead, Lq, db.kh, 1]));
    const rw = t(reshape(t(narrow(db.rel, -1, db.kh, db.kw)), [...lead, Lq, 1, db.kw]));
    const bias = t(reshape(t(add(rh, rw)), [...lead, Lq, db.kh * db.kw]));
    s = t(add(s, bias));
  }
  const p = t(softmax(s, -1));
  const out = matmul(p, v);
  // A recorded graph keeps what its backward needs until backward has run.
  for (const x of temps) x.dispose();
  return out;
}

/** Tile sizes: keys per K/V tile (forward, dq) and queries per tile (dkdv), bounded by 16 KiB of workgroup memory. */
function tiles(D: number): { kv: number; q: number } {
  return { kv: Math.min(64, Math.floor(2048 / D)), q: Math.min(64, Math.floor(1024 / D)) };
}

function fused(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, db: DecomposedBias | null, scale: number, lead: number[]): Tensor {
  const D = q.shape[q.ndim - 1];
  const Lq = q.shape[q.ndim - 2];
  const Lk = k.shape[k.ndim - 2];
  const lead2 = [...new Array(2 - lead.length).fill(1), ...lead];
  const [B, H] = lead2;
  const BH = B * H;
  const out = Tensor.empty([...lead, Lq, D], 'attention');
  if (out.size === 0) return out;
  const stats = Tensor.empty([BH * Lq * 2], 'attention lse');
  const ctxStr = `scaledDotProductAttention(q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)}${mask ? `, attnMask ${shapeStr(mask.shape)}` : ''}${db ? `, rel ${db.kh}x${db.kw}` : ''})`;
  const rel = db ? contiguousAt0(db.rel) : null;
  const common = {
    BH,
    H,
    Lq,
    Lk,
    has_mask: mask ? 1 : 0,
    q_strides: broadcastStrides(q, [...lead2, Lq, D]),
    k_strides: broadcastStrides(k, [...lead2, Lk, D]),
    v_strides: broadcastStrides(v, [...lead2, Lk, D]),
    m_strides: mask ? broadcastStrides(mask, [...lead2, Lq, Lk]) : [0, 0, 0, 0],
    q_offset: q.offset,
    k_offset: k.offset,
    v_offset: v.offset,
    m_offset: mask ? mask.offset : 0,
    rel_kh: db ? db.kh : 0,
    rel_kw: db ? db.kw : 0,
    rel_offset: 0,
    scale,
    D,
    tile: 0,
  };
  const inputs = { q: q.buffer, k: k.buffer, v: v.buffer, mask: (mask ?? q).buffer, rel: (rel ?? q).buffer };
  const tile = tiles(D);
  const spec = specialize();
  const rt = runtime();
  rt.dispatch({
    kernel: 'attention',
    entry: 'forward',
    overrides: spec ? { HEAD_DIM: D, TILE: tile.kv } : {},
    params: { ...common, tile: tile.kv },
    buffers: { ...inputs, out: out.buffer, stats: stats.buffer },
    workgroups: [Math.ceil(Lq / 64), H, B],
    context: ctxStr,
  });

  // Frees what the backward reads besides its inputs: the row statistics and rel's dense copy.
  const release = () => {
    stats.dispose();
    if (rel && rel !== db?.rel) rel.dispose();
  };
  return record('scaledDotProductAttention', out, [q, k, v, mask, db?.rel], (g) => {
    const go = g.isContiguous() && g.offset === 0 ? g : clone(g);
    const bufs = { ...inputs, d_o: go.buffer, o: out.buffer, stats: stats.buffer };
    const launch = (entry: string, grad: Tensor, workgroups: number | [number, number, number], t = 0, extra: Record<string, number> = {}) => {
      const overrides = spec ? { HEAD_DIM: D, TILE: t, ...extra } : extra;
      const params = { ...common, tile: t };
      // Each entry point binds only the buffers it uses (at most 8 storage buffers per stage).
      const used = rt.pipeline('attention_backward', entry, overrides).bindings;
      const all: Record<string, GPUBuffer> = { ...bufs, grad: grad.buffer };
      const buffers = Object.fromEntries(Object.entries(all).filter(([n]) => used.has(n)));
      rt.dispatch({ kernel: 'attention_backward', entry, overrides, params, buffers, workgroups, context: `${ctxStr} backward` });
    };
    launch('backward_delta', stats, Math.ceil((BH * Lq) / 64));
    const qGrid: [number, number, number] = [Math.ceil(Lq / 64), H, B];
    let gq: Tensor | null = null;
    let gk: Tensor | null = null;
    let gv: Tensor | null = null;
    let gmask: Tensor | null = null;
    let grel: Tensor | null = null;
    if (q.requiresGrad) {
      const full = Tensor.empty([...lead, Lq, D], 'attention dq');
      launch('backward_dq', full, qGrid, tile.kv);
      gq = reduceTo(full, q.shape);
    }
    if (mask?.requiresGrad) {
      const full = Tensor.empty([...lead, Lq, Lk], 'attention dmask');
      launch('backward_dbias', full, qGrid, tile.kv, { BIAS_GRAD: 0 });
      gmask = reduceTo(full, mask.shape);
    }
    if (db?.rel.requiresGrad) {
      grel = Tensor.empty(db.rel.shape, 'attention drel');
      launch('backward_dbias', grel, qGrid, tile.kv, { BIAS_GRAD: 1 });
    }
    if (k.requiresGrad || v.requiresGrad) {
      const dkv = Tensor.empty([2 * BH * Lk * D], 'attention dkv');
      launch('backward_dkdv', dkv, [Math.ceil(Lk / 64), H, B], tile.q);
      const shape = [...lead, Lk, D];
      const dk = dkv.view(shape, contiguousStrides(shape), 0);
      const dv = dkv.view(shape, contiguousStrides(shape), BH * Lk * D);
      dkv.dispose();
      if (k.requiresGrad) gk = reduceTo(dk, k.shape);
      else dk.dispose();
      if (v.requiresGrad) gv = reduceTo(dv, v.shape);
      else dv.dispose();
    }
    if (go !== g) go.dispose();
    return [gq, gk, gv, gmask, grel];
  }, [stats, rel]);
}

/** A contiguous handle starting at element 0 of its storage (what the kernels index); a copy records no node. */
function contiguousAt0(t: Tensor): Tensor {
  return t.isContiguous() && t.offset === 0 ? t : noGrad(() => clone(t));
}

/** Sums a full-shape gradient over broadcast dims to `shape`, freeing the full one when reduced. */
function reduceTo(full: Tensor, shape: readonly number[]): Tensor {
  const r = sumToShape(full, shape);
  if (r !== full) full.dispose();
  return r;
}
