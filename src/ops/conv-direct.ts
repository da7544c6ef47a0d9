// The direct launcher of the conv family (shaders/conv_direct.wgsl): stride-1, undilated,
// ungrouped convs, register-blocked so each loaded value feeds many multiply-adds. The implicit
// GEMM's loaders cost about two memory loads per FMA, and on SwiftShader and llvmpipe a load costs
// far more than an FMA, so this form is worth 10-20x there (llvmpipe, V-Net's 8->8 5x5x5 conv:
// 0.17 -> 2.9 GFLOP/s); it is the CPU adapters' default (the registry in conv.ts), a departure from
// DESIGN.md's one design per op for that reason. It runs the forward and the input gradient (the
// same kernel with the flipped, transposed weight) and the weight gradient; long reductions are
// split within the loop budget and their partials summed pairwise (conv-split.ts).
import { runtime } from '../gpu/runtime.js';
import { Tensor } from '../tensor.js';
import { epilogueBuffers, epilogueOverrides, epilogueParams, type EpilogueArgs } from './conv-epilogue.js';
import { v4, type Geometry } from './conv-geometry.js';
import { convLoopBudget, dispatchZ, splitReduce, type Spec } from './conv-split.js';
import { chunks, unitsPerChunk } from './loop-budget.js';

/**
 * Whether the direct kernels can run this conv (stride 1, dilation 1, one group, kW <= 16 and
 * kH*kW <= 64 for their register arrays). `inputGrad` also needs the leading padding to be at most
 * k-1, so the input gradient's padding k-1-p is not negative.
 */
export function directFits(geom: Geometry, groups: number, inputGrad = false): boolean {
  return (
    groups === 1 &&
    geom.s.every((v) => v === 1) &&
    geom.dil.every((v) => v === 1) &&
    geom.k[2] <= 16 &&
    geom.k[1] * geom.k[2] <= 64 &&
    (!inputGrad || geom.p.every((p, i) => p <= geom.k[i] - 1))
  );
}

/** Packs a conv weight [Cout, Cin, ...k] into direct_conv's layout (flip: for the input gradient). */
export function packWeight(w: Tensor, flip: boolean, context: string): Tensor {
  const [cout, cin] = w.shape;
  const kvol = w.size / (cout * cin);
  const o4 = Math.ceil((flip ? cin : cout) / 4);
  const n = (flip ? cout : cin) * kvol * o4;
  const packed = Tensor.empty([n * 4], `${context} packed weight`);
  const rt = runtime();
  rt.dispatch({
    kernel: 'conv_direct',
    entry: 'direct_pack_weight',
    overrides: { FLIP: flip ? 1 : 0 },
    params: { cout, cin, kvol, o4, w_offset: w.offset },
    buffers: { w_src: w.buffer, packed: packed.buffer },
    workgroups: rt.grid(Math.ceil(n / 64)),
    context: `${context} [pack weight]`,
  });
  return packed;
}

/**
 * y [batch, cout, ...outSpatial] = the stride-1 conv of dense x [batch, cin, ...] with a packed
 * weight, leading padding geom.p, then the epilogue.
 */
export function directConv(x: Tensor, packed: Tensor, geom: Geometry, cin: number, cout: number, outSpatial: readonly number[], context: string, ep?: EpilogueArgs): Tensor {
  const batch = x.shape[0];
  const out = Tensor.empty([batch, cout, ...outSpatial], context);
  if (out.size === 0) return out;
  const rt = runtime();
  const ow = geom.outSize[2];
  // Columns per invocation: 16 measured best on llvmpipe at width 32; narrow outputs take fewer.
  const tn = ow <= 4 ? 4 : ow <= 8 ? 8 : 16;
  const wchunks = Math.ceil(ow / tn);
  const rows = batch * geom.outSize[0] * geom.outSize[1];
  const co4 = Math.ceil(cout / 4);
  // direct_conv's loop iterations per input channel (i, kd, kh, the row load, kw; the TN columns
  // are written out) and outside the channel loop (the stores); the channels are split into
  // chunks that fit.
  const [kd, kh, kw] = geom.k;
  const perChannel = 1 + (kd + 1) + kd * (kh + 1 + kh * (tn + kw + (kw + 1)));
  const ciChunk = Math.max(1, Math.floor((convLoopBudget() - (6 * tn + 16)) / perChannel));
  const splits = Math.ceil(cin / ciChunk);
  const epOverrides = epilogueOverrides(ep);
  const spec: Spec = {
    kernel: 'conv_direct',
    entry: 'direct_conv',
    overrides: { TN: tn, ...epOverrides },
    params: {
      in_size: v4(geom.inSize),
      out_size: v4(geom.outSize),
      ksize: v4(geom.k),
      pad: v4(geom.p),
      batch,
      cin,
      cout,
      co4,
      wchunks,
      ci_chunk: ciChunk,
      splits,
      row0: 0,
      slab_rows: rows,
      z0: 0,
      b_offset: x.offset,
      ...epilogueParams(ep),
    },
    buffers: {},
    context: `${context} [direct]`,
  };
  const epBuffers = epilogueBuffers(ep, out);
  const buffers = { a_buf: packed.buffer, b_buf: x.buffer, ...epBuffers };
  // Multiply-adds per (b, d, h) row; over the dispatch work bound the rows run in slabs and the
  // channel blocks (and input-channel chunks) in slices, each submitted on its own.
  const rowWork = ow * cout * cin * kd * kh * kw;
  if (splits === 1) {
    const per = unitsPerChunk(rows, rowWork);
    chunks(rows, per, (row0, n) => dispatchZ({ ...spec, params: { ...spec.params, row0, slab_rows: n }, buffers }, Math.ceil((n * wchunks) / 64), co4, n * rowWork));
    return out;
  }
  // The partials of a slab of (b, d, h) rows [splits, rows, cout, W], then direct_finish.
  splitReduce(
    splits,
    rows,
    cout * ow,
    1,
    context,
    (part, r0, n) => dispatchZ({ ...spec, params: { ...spec.params, row0: r0, slab_rows: n }, buffers: { ...buffers, out: part.buffer } }, Math.ceil((n * wchunks) / 64), co4 * splits, n * rowWork),
    (src, r0, n, count) =>
      rt.dispatch({
        kernel: 'conv_direct',
        entry: 'direct_finish',
        overrides: epOverrides,
        params: { ...spec.params, row0: r0, slab_rows: n, splits: count },
        buffers: { ...epBuffers, partials: src.buffer },
        workgroups: Math.ceil((n * cout * ow) / 64),
        context: `${context} [direct, sum of ${splits} partials]`,
      }),
    rowWork,
  );
  return out;
}

/** dW [cout, cin, ...k] of a stride-1 conv from dense g [batch, cout, ...out] and x [batch, cin, ...in]. */
export function directWeightGrad(g: Tensor, x: Tensor, geom: Geometry, wShape: readonly number[], context: string): Tensor {
  const [batch, cout] = g.shape;
  const cin = x.shape[1];
  const rt = runtime();
  const co4 = Math.ceil(cout / 4);
  const units = co4 * cin * geom.k[0];
  const rows = batch * geom.outSize[0] * geom.outSize[1];
  // direct_weight_grad's loop iterations per row of g (r, the 8-column steps, per step the g loads,
  // kh, the row load, kw; the 8 columns are written out) and outside the row loop (the stores).
  const [, kh, kw] = geom.k;
  const steps = Math.ceil(geom.outSize[2] / 8);
  const perRow = 1 + (steps + 1) + steps * (9 + (kh + 1) + kh * (8 + kw + (kw + 1)));
  const maxRows = Math.max(1, Math.floor((convLoopBudget() - (4 * kh * kw + 16)) / perRow));
  // About 4096 invocations in all, each chunk of rows within the budget; each chunk gives one
  // partial dW, summed pairwise by direct_weight_grad_finish.
  const rowsPerChunk = Math.min(maxRows, Math.ceil(rows / Math.max(1, Math.min(rows, Math.ceil(4096 / units)))));
  const nChunks = Math.ceil(rows / rowsPerChunk);
  const dw = Tensor.empty([...wShape], context);
  const spec: Spec = {
    kernel: 'conv_direct',
    entry: 'direct_weight_grad',
    params: {
      in_size: v4(geom.inSize),
      out_size: v4(geom.outSize),
      ksize: v4(geom.k),
      pad: v4(geom.p),
      batch,
      cin,
      cout,
      co4,
      rows_per_chunk: rowsPerChunk,
      splits: nChunks,
      unit0: 0,
      slab_units: units,
      z0: 0,
      g_offset: g.offset,
      x_offset: x.offset,
    },
    buffers: { g_buf: g.buffer, x_buf: x.buffer, dw_part: dw.buffer },
    context: `${context} [direct]`,
  };
  // Multiply-adds per unit (4 output channels, one input channel and kd, every kh, kw tap) over
  // the whole reduction; over the dispatch work bound the units run in slabs and the reduction's
  // chunks in slices, each submitted on its own.
  const unitWork = 4 * kh * kw * rows * geom.outSize[2];
  if (nChunks === 1) {
    const per = unitsPerChunk(units, unitWork);
    chunks(units, per, (unit0, n) => dispatchZ({ ...spec, params: { ...spec.params, unit0, slab_units: n } }, Math.ceil(n / 64), 1, n * unitWork));
    return dw;
  }
  // The partials of a slab of units (o4, i, kd) [chunks, units, 4, kH*kW], then the pairwise sum.
  splitReduce(
    nChunks,
    units,
    4 * kh * kw,
    1,
    context,
    (part, u0, n) => dispatchZ({ ...spec, params: { ...spec.params, unit0: u0, slab_units: n }, buffers: { ...spec.buffers, dw_part: part.buffer } }, Math.ceil(n / 64), nChunks, n * unitWork),
    (src, u0, n, count) =>
      rt.dispatch({
        kernel: 'conv_direct',
        entry: 'direct_weight_grad_finish',
        params: { ...spec.params, unit0: u0, slab_units: n, splits: count },
        buffers: { partials: src.buffer, out: dw.buffer },
        workgroups: Math.ceil((n * 4 * kh * kw) / 64),
        context: `${context} [direct, sum of ${nChunks} partials]`,
      }),
    unitWork,
  );
  return dw;
}