// Scaled dot-product attention (torch.nn.functional.scaled_dot_product_attention without dropout
// or causal masking): out = softmax(scale * q k^T + bias) v over [..., L, D] operands with up to two
// leading dims (broadcast between q, k, v and the mask). The bias is an additive float `attnMask`
// broadcastable to [..., Lq, Lk], and/or SAM's decomposed relative position (see rel-pos.ts), which
// enters as `decomposedBias` so the Lq x Lk bias is never stored either.
// Three variants, registered as the 'attention' kernel family (src/gpu/variants.ts): 'fused'
// (shaders/attention.wgsl forward with online softmax; backward in shaders/attention_backward.wgsl
// recomputes scores tile by tile from the saved row log-sum-exp), 'fused-specialised' (the same
// kernels compiled per head dim and tile through their override constants) and 'composed' (matmul +
// softmax + matmul from the existing ops; the reference for tests and benchmarks, and the fallback
// for head dims over 128).
// Masks without infinities, in every variant (WGSL implementations may assume there are none): a
// mask value is clamped to MASK_FLOOR (-1e30), so a key masked with -inf gets weight 0 next to any
// unmasked key, and a row whose biased scores all stay under MASKED_ROW (every key masked) gives 0
// with zero gradients (PyTorch's safe softmax) instead of NaN; shaders/_attention.wgsl holds the
// same two constants.
// The fused kernels split the keys (forward, dq, d(bias)) or the queries (dk, dv) they walk into
// ranges whose loop passes per invocation stay within LOOP_BUDGET, then merge the splits
// (log-sum-exp weights in the forward, sums in the backward, in split order): Mesa's llvmpipe
// leaves every loop of an invocation, with no error, after 65,535 iterations in total, which one
// invocation walking 4096 keys at head dim 64 passed.
// Launches over the dispatch work bound (loop-budget.ts's DISPATCH_WORK: GPU watchdogs; 4096-token
// backward at 12 heads is ~5e10 multiply-adds) run their 64-row blocks (queries for the forward,
// dq and d(bias); keys for dk, dv) in several dispatches (params.x0), each submitted on its own.
import { noGrad, record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { bucketSize } from '../gpu/buffer-pool.js';
import { registerKernelFamily, type VariantParams } from '../gpu/variants.js';
import { headDimClass } from '../gpu/tune-classes.js';
import type { Overrides } from '../gpu/kernels.js';
import { scope } from '../scope.js';
import { Tensor, contiguousStrides, shapeStr } from '../tensor.js';
import { broadcastShapes, broadcastStrides } from './broadcast.js';
import { LOOP_BUDGET, chunks, unitsPerChunk } from './loop-budget.js';
import type { DispatchSpec } from '../gpu/runtime.js';
import { add, clamp, gt, mul } from './elementwise.js';
import { matmul } from './matmul.js';
import { max } from './reduce.js';
import { denseAt0, narrow, reshape, sumToShape, transpose } from './shape.js';
import { softmax } from './softmax.js';

const MAX_FUSED_DIM = 128;
/** The floor of a mask value, and the biased score under which a row has no unmasked key (as in shaders/_attention.wgsl). */
const MASK_FLOOR = -1e30;
const MASKED_ROW = -5e29;

/**
 * What the family chooses for: the head dim D, and for a specialised pipeline the tile of the launch
 * (keys per K/V tile, or queries per tile for dk/dv; 0 or absent for entry points that walk no tiles).
 */
export interface AttentionProblem {
  D: number;
  tile?: number;
}

const fusedApplies = ({ D }: AttentionProblem) => D >= 1 && D <= MAX_FUSED_DIM;

export const attentionKernels = registerKernelFamily<AttentionProblem>({
  family: 'attention',
  variants: [
    {
      name: 'fused',
      description: 'online softmax over K/V tiles, scores never stored; head dim and tile from the uniform, one pipeline for every head dim; param budget: loop passes per invocation (tests split small problems with it)',
      applies: fusedApplies,
    },
    {
      name: 'fused-specialised',
      description: "the fused kernels compiled per head dim and tile (HEAD_DIM, TILE overrides: constant loop bounds, faster on GPUs); param budget as 'fused'",
      applies: fusedApplies,
      overrides: ({ D, tile = 0 }): Overrides => (tile ? { HEAD_DIM: D, TILE: tile } : { HEAD_DIM: D }),
    },
    {
      name: 'composed',
      description: 'matmul + softmax + matmul from the existing ops, storing the Lq x Lk scores (the reference, and head dims over 128)',
      // the class (head dim) does not bound Lq x Lk: 805 MB of scores for MedSAM's 12 x 4096 x 4096
      // global blocks, so a choice timed on 196 tokens must not reach 4096
      classWide: false,
    },
  ],
  // On CPU adapters a pipeline takes seconds to compile, so one pipeline serves every head dim there.
  choose: ({ D }, adapter) => (!fusedApplies({ D }) ? 'composed' : adapter === 'cpu' ? 'fused' : 'fused-specialised'),
  shapeClass: headDimClass,
});

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

/** A range split: `splits` ranges of `len` rows (a multiple of the tile; the last may be shorter). */
export interface SplitPlan {
  splits: number;
  len: number;
}

/**
 * Loop passes of one invocation of a fused kernel walking `tiles` tiles of T rows (keys; queries for
 * dkdv) at D4 = ceil(D / 4) vec4s per row, counted as llvmpipe counts them: a loop entered for n
 * passes costs n + 1 (also a loop in a branch not taken: 1), inner loops multiplied out. Following
 * the shaders' loops:
 *   forward: setup (D4 + 1); per tile the tile loop (1), the cooperative load (ceil(T D4 / 64) + 1),
 *     the score loop (T + 1, each with D4 + 1), the rescale (D4 + 1), the p v loop (T + 1, each with
 *     D4 + 1); the tile loop's exit (1) and the store (D4 + 1).
 *   dq (backward_dq and backward_dbias): setup, d(rel)'s zeroing (relLen + 1, relLen = kh + kw when
 *     it runs, else 1 for the loop not taken); per tile the tile loop, the load, the key loop (T + 1)
 *     with up to two inner loops of D4 + 1 per key (dot products, then dq's accumulation); the exit
 *     and the store.
 *   dkdv: as dq without the zeroing (queries instead of keys; dk and dv stored in one loop).
 */
export function attentionLoopPasses(kind: 'forward' | 'dq' | 'dkdv', tiles: number, T: number, D: number, relLen = 0): number {
  const D4 = Math.ceil(D / 4);
  const load = Math.ceil((T * D4) / 64) + 1;
  const fixed = 2 * (D4 + 1) + 1 + (kind === 'dq' ? relLen + 1 : 0);
  const perTile = kind === 'forward' ? 1 + load + 2 * (T + 1 + T * (D4 + 1)) + (D4 + 1) : 1 + load + (T + 1) + 2 * T * (D4 + 1);
  return fixed + tiles * perTile;
}

/**
 * How to split L rows walked in tiles of T so each invocation stays within `budget` loop passes, in
 * balanced splits. The budget is LOOP_BUDGET unless a forced fused variant carries a smaller one.
 */
export function attentionSplit(kind: 'forward' | 'dq' | 'dkdv', L: number, T: number, D: number, relLen = 0, budget = LOOP_BUDGET): SplitPlan {
  const total = Math.max(1, Math.ceil(L / T));
  let per = 1;
  while (per < total && attentionLoopPasses(kind, per + 1, T, D, relLen) <= budget) per++;
  const splits = Math.ceil(total / per);
  const len = Math.ceil(total / splits) * T;
  return { splits: Math.ceil(Math.max(L, 1) / len), len };
}

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
  const choice = attentionKernels.pick({ D });
  const overridesFor = (tile: number) => choice.variant.overrides?.({ D, tile }, choice.params) ?? {};
  // What either variant makes besides its result (the composition's products, the split partials,
  // dense copies, the row statistics) is freed with the scope, or, where the recorded graph needs it
  // for backward, once backward has run.
  return scope(() => (choice.variant.name === 'composed' ? composed(q, k, v, mask, db, scale) : fused(q, k, v, mask, db, scale, lead, overridesFor, choice.params)));
}

/**
 * The reference composition: softmax(scale * q k^T + bias) v from matmul, softmax and adds, with the
 * mask clamped to MASK_FLOOR and rows whose every key is masked (biased scores all under MASKED_ROW)
 * multiplied by 0, as the fused kernel defines them: their softmax is finite (uniform over the
 * floor), so the products and their gradients are 0, never NaN.
 */
function composed(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, db: DecomposedBias | null, scale: number): Tensor {
  let s = mul(matmul(q, transpose(k, -1, -2)), scale);
  if (mask) s = add(s, clamp(mask, MASK_FLOOR));
  if (db) {
    const Lq = q.shape[q.ndim - 2];
    const lead = db.rel.shape.slice(0, -2);
    const rh = reshape(narrow(db.rel, -1, 0, db.kh), [...lead, Lq, db.kh, 1]);
    const rw = reshape(narrow(db.rel, -1, db.kh, db.kw), [...lead, Lq, 1, db.kw]);
    s = add(s, reshape(add(rh, rw), [...lead, Lq, db.kh * db.kw]));
  }
  const out = matmul(softmax(s, -1), v);
  if (!mask && !db) return out;
  const unmasked = noGrad(() => gt(max(s, -1, true), MASKED_ROW)); // [..., Lq, 1]: 1 where some key is not masked
  return mul(out, unmasked);
}

/**
 * Tile sizes: keys per K/V tile (forward, dq) and queries per tile (dkdv), bounded by 16 KiB of
 * workgroup memory (rows of ceil(D / 4) vec4s: 512 per K or V tile, 256 per q or dO tile).
 */
function tiles(D: number): { kv: number; q: number } {
  const D4 = Math.ceil(D / 4);
  return { kv: Math.min(64, Math.floor(512 / D4)), q: Math.min(64, Math.floor(256 / D4)) };
}

/** The override constants of the chosen fused variant for a launch walking tiles of `tile` rows (0: none). */
type OverridesFor = (tile: number) => Overrides;

function fused(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, db: DecomposedBias | null, scale: number, lead: number[], overridesFor: OverridesFor, params: VariantParams): Tensor {
  const D = q.shape[q.ndim - 1];
  const Lq = q.shape[q.ndim - 2];
  const Lk = k.shape[k.ndim - 2];
  const lead2 = [...new Array(2 - lead.length).fill(1), ...lead];
  const [B, H] = lead2;
  const BH = B * H;
  const out = Tensor.empty([...lead, Lq, D], 'attention');
  if (out.size === 0) return out;
  const budget = params.budget ?? LOOP_BUDGET;
  const ctxStr = `scaledDotProductAttention(q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)}${mask ? `, attnMask ${shapeStr(mask.shape)}` : ''}${db ? `, rel ${db.kh}x${db.kw}` : ''})`;
  const stats = Tensor.empty([BH * Lq * 2], 'attention lse');
  const rel = db ? denseAt0(db.rel) : null; // saved: the backward kernels read it too
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
    splits: 1,
    split_len: 0,
    n_elems: 0,
    x0: 0,
    split0: 0,
    accumulate: 0,
  };
  const inputs = { q: q.buffer, k: k.buffer, v: v.buffer, mask: mask?.buffer ?? null, rel: rel?.buffer ?? null };
  const tile = tiles(D);
  const rt = runtime();
  const R = BH * Lq;
  const fsplit = attentionSplit('forward', Lk, tile.kv, D, 0, budget);
  checkMerge(fsplit, budget, ctxStr);
  const fparams = { ...common, tile: tile.kv, splits: fsplit.splits, split_len: fsplit.len };
  const overrides = overridesFor(tile.kv);
  const fgrid: [number, number, number] = [Math.ceil(Lq / 64), H, B * fsplit.splits];
  if (fsplit.splits === 1) {
    dispatchBlocks({ kernel: 'attention', entry: 'forward', overrides, params: fparams, buffers: { ...inputs, out: out.buffer, stats: stats.buffer }, context: ctxStr }, fgrid, 2 * D * BH * Lk);
  } else {
    // Each key split's partials (accumulator, running max and sum), merged into out and lse.
    const partO = Tensor.empty([fsplit.splits * R * D], 'attention split partials');
    const partStats = Tensor.empty([fsplit.splits * R * 2], 'attention split stats');
    dispatchBlocks({ kernel: 'attention', entry: 'forward', overrides, params: fparams, buffers: { ...inputs, out: partO.buffer, stats: partStats.buffer }, context: ctxStr }, fgrid, 2 * D * BH * Lk);
    rt.dispatch({
      kernel: 'attention',
      entry: 'forward_merge',
      overrides: overridesFor(0),
      params: fparams,
      buffers: { part: partO.buffer, part_stats: partStats.buffer, out: out.buffer, stats: stats.buffer },
      workgroups: Math.ceil((R * D) / 64),
      context: `${ctxStr} split merge`,
    });
  }

  return record('scaledDotProductAttention', out, [q, k, v, mask, db?.rel], (g) => {
    const go = denseAt0(g);
    const bufs = { ...inputs, d_o: go.buffer, o: out.buffer, stats: stats.buffer };
    const launch = (entry: string, grad: Tensor, workgroups: number | [number, number, number], t = 0, extra: Record<string, number> = {}, split: Round = { splits: 1, len: 0, first: 0 }, part?: Tensor, nElems = 0) => {
      // (the split sum does not depend on the head dim: one pipeline)
      const overrides = entry === 'backward_sum_splits' ? extra : { ...overridesFor(t), ...extra };
      const accumulate = entry === 'backward_sum_splits' && split.first > 0 ? 1 : 0;
      const params = { ...common, tile: t, splits: split.splits, split_len: split.len, n_elems: nElems, split0: split.first, accumulate };
      // Each entry point binds only the buffers it uses (at most 8 storage buffers per stage).
      const used = rt.pipeline('attention_backward', entry, overrides).bindings;
      const all: Record<string, GPUBuffer | null> = { ...bufs, grad: grad.buffer, ...(part ? { part: part.buffer } : {}) };
      const buffers = Object.fromEntries(Object.entries(all).filter(([n]) => used.has(n)));
      const spec = { kernel: 'attention_backward', entry, overrides, params, buffers, context: `${ctxStr} backward` };
      if (!(workgroups instanceof Array)) return rt.dispatch({ ...spec, workgroups });
      // multiply-adds per row of the block axis: dq, d(bias) walk every key with two dot products
      // and dq's accumulation; dk, dv walk every query with two dot products and two accumulations
      const rowWork = entry === 'backward_dkdv' ? 4 * D * BH * Lq : 3 * D * BH * Lk;
      dispatchBlocks(spec, [workgroups[0], workgroups[1], workgroups[2] * split.splits], rowWork);
    };
    // Runs a split kernel into [splits, n] partials and sums them into `into` (n elements), or
    // straight into `into` with one split; partials over the binding limit in rounds of splits,
    // each round's summed into `into` in split order.
    const launchSplit = (entry: string, into: Tensor, n: number, workgroups: [number, number, number], t: number, split: SplitPlan, extra: Record<string, number> = {}) => {
      if (split.splits === 1) return launch(entry, into, workgroups, t, extra, { ...split, first: 0 });
      checkMerge(split, budget, `${ctxStr} backward`);
      const perRound = splitsPerBinding(split.splits, n, rt.limits.maxStorageBufferBindingSize);
      for (let first = 0; first < split.splits; first += perRound) {
        const round = { splits: Math.min(perRound, split.splits - first), len: split.len, first };
        const part = Tensor.empty([round.splits * n], 'attention split partials');
        launch(entry, part, workgroups, t, extra, round);
        launch('backward_sum_splits', into, Math.ceil(n / 64), 0, {}, round, part, n);
      }
    };
    launch('backward_delta', stats, Math.ceil((BH * Lq) / 64));
    const qGrid: [number, number, number] = [Math.ceil(Lq / 64), H, B];
    const kSplit = attentionSplit('dq', Lk, tile.kv, D, 0, budget);
    let gq: Tensor | null = null;
    let gk: Tensor | null = null;
    let gv: Tensor | null = null;
    let gmask: Tensor | null = null;
    let grel: Tensor | null = null;
    if (q.requiresGrad) {
      const full = Tensor.empty([...lead, Lq, D], 'attention dq');
      launchSplit('backward_dq', full, BH * Lq * D, qGrid, tile.kv, kSplit);
      gq = sumToShape(full, q.shape);
    }
    if (mask?.requiresGrad) {
      const full = Tensor.empty([...lead, Lq, Lk], 'attention dmask');
      // each key split writes its own columns of the full gradient
      launch('backward_dbias', full, qGrid, tile.kv, { BIAS_GRAD: 0 }, { ...kSplit, first: 0 });
      gmask = sumToShape(full, mask.shape);
    }
    if (db?.rel.requiresGrad) {
      grel = Tensor.empty(db.rel.shape, 'attention drel');
      const relSplit = attentionSplit('dq', Lk, tile.kv, D, db.kh + db.kw, budget);
      launchSplit('backward_dbias', grel, BH * Lq * (db.kh + db.kw), qGrid, tile.kv, relSplit, { BIAS_GRAD: 1 });
    }
    if (k.requiresGrad || v.requiresGrad) {
      const dkv = Tensor.empty([2 * BH * Lk * D], 'attention dkv');
      launchSplit('backward_dkdv', dkv, 2 * BH * Lk * D, [Math.ceil(Lk / 64), H, B], tile.q, attentionSplit('dkdv', Lq, tile.q, D, 0, budget));
      const shape = [...lead, Lk, D];
      if (k.requiresGrad) gk = sumToShape(dkv.view(shape, contiguousStrides(shape), 0), k.shape);
      if (v.requiresGrad) gv = sumToShape(dkv.view(shape, contiguousStrides(shape), BH * Lk * D), v.shape);
    }
    return [gq, gk, gv, gmask, grel];
  }, [stats, rel]);
}

/**
 * Dispatches a fused kernel's grid [row blocks, H, B * splits], its row blocks (64 rows each, of
 * `rowWork` multiply-adds per row) in chunks within the dispatch work bound, each submitted on
 * its own (loop-budget.ts's chunks); under the bound, one dispatch as before.
 */
function dispatchBlocks(spec: Omit<DispatchSpec, 'workgroups'> & { params: Record<string, unknown> }, grid: [number, number, number], rowWork: number): void {
  const rt = runtime();
  const per = unitsPerChunk(grid[0], 64 * rowWork); // all of them when under the bound
  chunks(grid[0], per, (x0, n) => rt.dispatch({ ...spec, params: { ...spec.params, x0 }, workgroups: [n, grid[1], grid[2]] }));
}

/** A launch's part of a split plan: `splits` splits from split `first` on. */
type Round = SplitPlan & { first: number };

/** How many splits of n-element partials one buffer may hold within the binding limit (at least 1; the pool rounds sizes up). */
export function splitsPerBinding(splits: number, n: number, maxBinding: number): number {
  let per = splits;
  while (per > 1 && bucketSize(4 * per * n) > maxBinding) per--;
  return per;
}

/** The merges (forward_merge, backward_sum_splits) loop over the splits: at most 2 (splits + 1) passes. */
function checkMerge(split: SplitPlan, budget: number, ctx: string): void {
  if (2 * (split.splits + 1) > budget) {
    throw new Error(`${ctx}: ${split.splits} splits of ${split.len} rows are more than one merge invocation may combine within the loop budget (${budget} passes)`);
  }
}
