// Convolution family: conv1d/2d/3d and convTranspose2d/3d (PyTorch semantics and layouts), one
// N-d design in shaders/conv.wgsl (1d and 2d run as 3d with unit dims), with a fused epilogue
// (bias, residual add, relu/elu/prelu/gelu), forward and backward side by side.
// This file is the op API and its backward rules; the kernels run through the launchers:
// conv-gemm.ts (implicit GEMM: 'naive', and 'tiled', 'tiled-k32', 'tiled-m16' on the GEMM tile
// core), conv-direct.ts ('direct': stride-1 convs on CPU adapters), with conv-epilogue.ts (the
// fused epilogue) and conv-split.ts (split reductions).
// The 'conv' kernel family (src/gpu/variants.ts) chooses among them per launch.
//
// Forward, per group, with i = o*s - p + k*dil (p the leading padding of each axis):
//   conv:       y[b, co, o] = sum_{ci, k} W[co, ci, k] * x[b, ci, o*s - p + k*dil]
//   transposed: y[b, co, j] = sum_{ci, k} W[ci, co, k] * x[b, ci, i]  over i*s - p + k*dil = j,
//               i.e. the gather form: x[b, ci, (j + p - k*dil)/s] where the division is exact.
// Backward of conv (differentiate y with respect to each x[b, ci, i] and W[co, ci, k]):
//   dX[b, ci, i] = sum_{co, k : (i + p - k*dil) = o*s} W[co, ci, k] * dY[b, co, o]
//                = a transposed conv of dY with the same W, stride, padding and dilation, whose
//                  output size is x's (W [Cout, Cin/g, k] is already the transposed layout
//                  [in = Cout, out/g = Cin/g, k]);
//   dW[co, ci, k] = sum_{b, o} dY[b, co, o] * x[b, ci, o*s - p + k*dil]
//                 = the correlation of x with dY, reduced over batch and space (f32, split over
//                   the reduction and summed when it is long);
//   db[co] = sum_{b, o} dY[b, co, o].
// Backward of the transposed conv (the same sums read the other way):
//   dX[b, ci, i] = sum_{co, k} W[ci, co, k] * dY[b, co, i*s - p + k*dil] = a conv of dY with W read
//                  as a conv weight [Cout_c = Cin, Cin_c/g = Cout/g, k], output size x's;
//   dW[ci, co, k] = sum_{b, i} x[b, ci, i] * dY[b, co, i*s - p + k*dil] = the same correlation
//                   kernel with x in the role of dY and dY in the role of x.
// Fused epilogue y = act(c + bias) + r (conv-epilogue.ts): its backward gives dq, which flows into
// the rules above.
import { needsGrad, noGrad, record } from '../autograd.js';
import { registerKernelFamily } from '../gpu/variants.js';
import { convClass } from '../gpu/tune-classes.js';
import { scope } from '../scope.js';
import { Tensor, shapeStr } from '../tensor.js';
import { directConv, directFits, directWeightGrad, packWeight } from './conv-direct.js';
import { epilogueArgs, epilogueBackward, type ConvEpilogue, type EpilogueArgs } from './conv-epilogue.js';
import { convTileFits, gemmShape, launch, type GemmVariant, type Launch } from './conv-gemm.js';
import { to3, type Geometry, type V3 } from './conv-geometry.js';
import { contiguous, reshape } from './shape.js';
import { sum } from './reduce.js';

export type { ConvActivation, ConvEpilogue } from './conv-epilogue.js';
export { setConvTransposePhases } from './conv-gemm.js';
export { setConvReductionLimits, type ConvReductionLimits } from './conv-split.js';

export type ConvVariant = GemmVariant | 'direct';
export type IntOrTuple = number | readonly number[];
/** An int, one int per axis, one [before, after] pair per axis, 'same' (stride 1) or 'valid'. */
export type ConvPadding = number | readonly number[] | readonly (readonly [number, number])[] | 'same' | 'valid';

export interface ConvOptions {
  stride?: IntOrTuple;
  padding?: ConvPadding;
  dilation?: IntOrTuple;
  groups?: number;
}

export interface ConvTransposeOptions {
  stride?: IntOrTuple;
  padding?: IntOrTuple;
  outputPadding?: IntOrTuple;
  dilation?: IntOrTuple;
  groups?: number;
}

/** One launch as the registry sees it: the GEMM's size and whether the direct kernels can run it. */
export interface ConvProblem {
  M: number;
  N: number;
  K: number;
  direct: boolean;
}

export const convKernels = registerKernelFamily<ConvProblem>({
  family: 'conv',
  variants: [
    { name: 'naive', description: 'implicit GEMM, one output (MR rows on CPU adapters) per invocation: small problems, few output channels' },
    { name: 'tiled', description: 'implicit GEMM in 64x64 (16x64 for <= 16 rows) workgroup tiles, 16-deep K slices: large problems on GPUs' },
    {
      name: 'tiled-k32',
      description: 'tiled, 32-deep K slices: half the barriers per FMA (adapters where barriers cost); 64-row tiles need 17 KiB of workgroup memory',
      applies: (p) => convTileFits('tiled-k32', p.M),
    },
    {
      name: 'tiled-m16',
      description: 'tiled in 16x64 tiles at any row count (tiled uses them only up to 16 rows): 4x the workgroups, a quarter of the rows each',
      applies: (p) => p.M > 16,
    },
    {
      name: 'direct',
      description: 'register-blocked stride-1 kernels (conv_direct.wgsl), ~20x fewer loads per FMA: CPU adapters',
      applies: (p) => p.direct,
    },
  ],
  // CPU adapters pay per load far more than per FMA: the direct kernels where they fit (measured
  // 10-20x on llvmpipe), else naive for few rows (a 16-row tile of 4 channels is mostly padding:
  // naive 2.5x faster on SwiftShader at 16^3). GPUs keep the implicit GEMM until measured there.
  choose: ({ M, N, K, direct }, adapter) => {
    if (adapter === 'cpu' && direct) return 'direct';
    if (adapter === 'cpu' && M < 16) return 'naive';
    return M * N * K >= 32 * 32 * 32 && N >= 64 && K >= 16 ? 'tiled' : 'naive';
  },
  shapeClass: convClass,
});

/** The registry's variant for launch L: 'direct' only where `direct` says those kernels can run it. */
function variantFor(L: Launch, direct: boolean): ConvVariant {
  const { M, N, K } = gemmShape(L);
  return convKernels.pick({ M, N, K, direct }).variant.name as ConvVariant;
}

/** Runs L on the implicit GEMM with the registry's variant (launches the direct kernels cannot run). */
function gemm(L: Launch, ep?: EpilogueArgs): Tensor {
  return launch(L, variantFor(L, false) as GemmVariant, ep);
}

// ---- argument normalisation ----

function tuple(v: IntOrTuple | undefined, n: number, dflt: number, what: string, op: string): number[] {
  const t = v === undefined ? new Array<number>(n).fill(dflt) : typeof v === 'number' ? new Array<number>(n).fill(v) : [...v];
  if (t.length !== n || t.some((x) => !Number.isInteger(x))) throw new Error(`${op}: ${what} must be an int or ${n} ints, got ${JSON.stringify(v)}`);
  return t;
}

/** Leading and trailing padding per axis. */
function resolvePadding(padding: ConvPadding | undefined, nd: number, k: number[], dil: number[], stride: number[], op: string): [number[], number[]] {
  if (padding === undefined || padding === 'valid') return [new Array(nd).fill(0), new Array(nd).fill(0)];
  if (padding === 'same') {
    if (stride.some((s) => s !== 1)) throw new Error(`${op}: padding='same' needs stride 1 (as in PyTorch), got stride ${shapeStr(stride)}`);
    const total = k.map((kk, i) => dil[i] * (kk - 1));
    const before = total.map((t) => Math.floor(t / 2));
    return [before, total.map((t, i) => t - before[i])];
  }
  if (typeof padding !== 'number' && padding.length && Array.isArray(padding[0])) {
    const pairs = padding as readonly (readonly [number, number])[];
    if (pairs.length !== nd || pairs.some((p) => p.length !== 2)) throw new Error(`${op}: padding pairs must be ${nd} [before, after] pairs, got ${JSON.stringify(padding)}`);
    const before = pairs.map((p) => p[0]);
    const after = pairs.map((p) => p[1]);
    if ([...before, ...after].some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`${op}: padding must be non-negative ints, got ${JSON.stringify(padding)}`);
    return [before, after];
  }
  const p = tuple(padding as IntOrTuple, nd, 0, 'padding', op);
  if (p.some((x) => x < 0)) throw new Error(`${op}: padding must be non-negative, got ${JSON.stringify(padding)}`);
  return [p, p];
}

function checkInputs(op: string, nd: number, x: Tensor, w: Tensor, b: Tensor | null): void {
  if (x.ndim !== nd + 2) throw new Error(`${op}: input must be ${nd + 2}-d [batch, C, ${['D', 'H', 'W'].slice(3 - nd).join(', ')}], got ${shapeStr(x.shape)}`);
  if (w.ndim !== nd + 2) throw new Error(`${op}: weight must be ${nd + 2}-d, got ${shapeStr(w.shape)}`);
  if (b && b.ndim !== 1) throw new Error(`${op}: bias must be 1-d, got ${shapeStr(b.shape)}`);
}

/** A contiguous handle of t without recording a gradient node. */
function dense(t: Tensor): Tensor {
  return noGrad(() => contiguous(t));
}

/** The kernels' operands: x, w and b dense, and the epilogue's arguments (both conv ops). */
function operands(name: string, x: Tensor, w: Tensor, b: Tensor | null, epilogue: ConvEpilogue, outShape: readonly number[], grad: boolean) {
  const bc = b ? dense(b) : null;
  return { xc: dense(x), wc: dense(w), bc, ep: epilogueArgs(name, epilogue, outShape, bc, grad) };
}

/** Gradient of the bias: dq summed over batch and space. */
function biasGrad(dq: Tensor): Tensor {
  return sum(dq, [0, ...dq.shape.slice(2).map((_, i) => i + 2)]);
}

/** Makes a fresh handle when `t` is `g` itself (a backward rule must not return its input handle). */
function own(t: Tensor, g: Tensor): Tensor {
  return t === g ? g.view(g.shape, g.strides) : t;
}
// ---- conv ----

/**
 * N-d convolution with a fused epilogue; `conv1d/2d/3d` are this with epilogue {}.
 * x [batch, Cin, ...spatial], w [Cout, Cin/groups, ...k], b [Cout] or null.
 */
export function conv(x: Tensor, w: Tensor, b: Tensor | null, options: ConvOptions = {}, epilogue: ConvEpilogue = {}): Tensor {
  const nd = x.ndim - 2;
  const op = `conv${nd}d`;
  if (nd < 1 || nd > 3) throw new Error(`conv: input must be 3-, 4- or 5-d, got ${shapeStr(x.shape)}`);
  checkInputs(op, nd, x, w, b);
  const groups = options.groups ?? 1;
  const [batch, Cin, ...inSp] = x.shape;
  const [Cout, CinG, ...k] = w.shape;
  const name = `${op}(${shapeStr(x.shape)}, ${shapeStr(w.shape)})`;
  if (!Number.isInteger(groups) || groups < 1 || Cin % groups || Cout % groups) {
    throw new Error(`${name}: groups=${groups} must divide Cin=${Cin} and Cout=${Cout}`);
  }
  if (CinG !== Cin / groups) throw new Error(`${name}: weight expects ${CinG * groups} input channels (${CinG} per group, groups=${groups}), input has ${Cin}`);
  if (b && b.shape[0] !== Cout) throw new Error(`${name}: bias ${shapeStr(b.shape)} must be [${Cout}]`);
  const stride = tuple(options.stride, nd, 1, 'stride', name);
  const dil = tuple(options.dilation, nd, 1, 'dilation', name);
  if ([...stride, ...dil].some((v) => v < 1)) throw new Error(`${name}: stride and dilation must be >= 1`);
  const [pb, pa] = resolvePadding(options.padding, nd, k, dil, stride, name);
  const outSp = inSp.map((n, i) => Math.floor((n + pb[i] + pa[i] - dil[i] * (k[i] - 1) - 1) / stride[i]) + 1);
  if (outSp.some((n) => n < 1)) throw new Error(`${name}: the kernel (dilated) is larger than the padded input; output would be ${shapeStr(outSp)}`);
  const outShape = [batch, Cout, ...outSp];
  const geom: Geometry = { inSize: to3(inSp, 1), outSize: to3(outSp, 1), k: to3(k, 1), s: to3(stride, 1), p: to3(pb, 0), dil: to3(dil, 1) };
  // The backward's geometry: from the output's spatial size back to the input's.
  const bwdGeom: Geometry = { ...geom, inSize: geom.outSize, outSize: geom.inSize };
  const grad = needsGrad(x, w, b, epilogue.preluWeight, epilogue.residual);
  return scope(() => {
    const { xc, wc, bc, ep } = operands(name, x, w, b, epilogue, outShape, grad);
    const fwd: Launch = { mode: 0, geom, groups, batch, M: Cout / groups, cinG: CinG, a: wc, b: xc, context: name, outSpatial: outSp };
    const v = variantFor(fwd, directFits(geom, groups));
    const out = v === 'direct' ? directConv(xc, packWeight(wc, false, name), geom, Cin, Cout, outSp, name, ep) : launch(fwd, v, ep);
    if (!grad) return out;
    const inputs = [x, w, b, epilogue.preluWeight ?? null, epilogue.residual ?? null];
    return record(op, out, inputs, (g) => {
      const { dq, dres, dprelu } = epilogueBackward(dense(g), ep, Cout);
      let dx: Tensor | null = null;
      let dw: Tensor | null = null;
      if (x.requiresGrad) {
        // the transposed conv of dq: "x" = dq [batch, Cout, out], weight read as [Cout, Cin/g, k]
        const context = `${name} backward (input)`;
        const L: Launch = { mode: 1, geom: bwdGeom, groups, batch, M: CinG, cinG: Cout / groups, a: wc, b: dq, context, outSpatial: inSp };
        const vx = variantFor(L, directFits(geom, groups, true));
        if (vx === 'direct') {
          // the stride-1 conv of dq with the flipped, transposed weight and leading padding k-1-p
          const flipGeom: Geometry = { ...bwdGeom, p: geom.k.map((kk, i) => kk - 1 - geom.p[i]) as V3 };
          dx = directConv(dq, packWeight(wc, true, context), flipGeom, Cout, Cin, inSp, context);
        } else dx = launch(L, vx);
      }
      if (w.requiresGrad) {
        const context = `${name} backward (weight)`;
        const L: Launch = { mode: 2, geom, groups, batch, M: Cout / groups, cinG: CinG, a: dq, b: xc, context };
        const vw = variantFor(L, directFits(geom, groups));
        dw = vw === 'direct' ? directWeightGrad(dq, xc, geom, w.shape, context) : reshape(launch(L, vw), w.shape);
      }
      const db = b?.requiresGrad ? biasGrad(dq) : null;
      return [dx, dw, db, dprelu, dres ? own(dres, g) : null];
    }, [xc, wc, bc, ep.prelu, ep.residual, ep.pre]);
  });
}

export function conv1d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvOptions = {}): Tensor {
  if (x.ndim !== 3) throw new Error(`conv1d: input must be 3-d [batch, C, L], got ${shapeStr(x.shape)}`);
  return conv(x, w, b, options);
}

export function conv2d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvOptions = {}): Tensor {
  if (x.ndim !== 4) throw new Error(`conv2d: input must be 4-d [batch, C, H, W], got ${shapeStr(x.shape)}`);
  return conv(x, w, b, options);
}

export function conv3d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvOptions = {}): Tensor {
  if (x.ndim !== 5) throw new Error(`conv3d: input must be 5-d [batch, C, D, H, W], got ${shapeStr(x.shape)}`);
  return conv(x, w, b, options);
}

// ---- transposed conv ----

/**
 * N-d transposed convolution (gather form) with a fused epilogue.
 * x [batch, Cin, ...spatial], w [Cin, Cout/groups, ...k], b [Cout] or null.
 */
export function convTranspose(x: Tensor, w: Tensor, b: Tensor | null, options: ConvTransposeOptions = {}, epilogue: ConvEpilogue = {}): Tensor {
  const nd = x.ndim - 2;
  const op = `convTranspose${nd}d`;
  if (nd < 1 || nd > 3) throw new Error(`convTranspose: input must be 3-, 4- or 5-d, got ${shapeStr(x.shape)}`);
  checkInputs(op, nd, x, w, b);
  const groups = options.groups ?? 1;
  const [batch, Cin, ...inSp] = x.shape;
  const [wIn, CoutG, ...k] = w.shape;
  const name = `${op}(${shapeStr(x.shape)}, ${shapeStr(w.shape)})`;
  if (!Number.isInteger(groups) || groups < 1 || Cin % groups) throw new Error(`${name}: groups=${groups} must divide Cin=${Cin}`);
  if (wIn !== Cin) throw new Error(`${name}: weight [Cin, Cout/groups, ...k] expects ${wIn} input channels, input has ${Cin}`);
  const Cout = CoutG * groups;
  if (b && b.shape[0] !== Cout) throw new Error(`${name}: bias ${shapeStr(b.shape)} must be [${Cout}]`);
  const stride = tuple(options.stride, nd, 1, 'stride', name);
  const pad = tuple(options.padding, nd, 0, 'padding', name);
  const outPad = tuple(options.outputPadding, nd, 0, 'outputPadding', name);
  const dil = tuple(options.dilation, nd, 1, 'dilation', name);
  if ([...stride, ...dil].some((v) => v < 1) || pad.some((v) => v < 0)) throw new Error(`${name}: stride/dilation must be >= 1 and padding >= 0`);
  if (outPad.some((v, i) => v < 0 || (v >= stride[i] && v >= dil[i]))) {
    throw new Error(`${name}: outputPadding ${shapeStr(outPad)} must be smaller than stride or dilation`);
  }
  const outSp = inSp.map((n, i) => (n - 1) * stride[i] - 2 * pad[i] + dil[i] * (k[i] - 1) + outPad[i] + 1);
  if (outSp.some((n) => n < 1)) throw new Error(`${name}: output size ${shapeStr(outSp)} is empty`);
  const outShape = [batch, Cout, ...outSp];
  const geom: Geometry = { inSize: to3(inSp, 1), outSize: to3(outSp, 1), k: to3(k, 1), s: to3(stride, 1), p: to3(pad, 0), dil: to3(dil, 1) };
  // The conv that maps dY (spatial outSp) back to x's spatial size.
  const bwdGeom: Geometry = { ...geom, inSize: geom.outSize, outSize: geom.inSize };
  const CinG = Cin / groups;
  const grad = needsGrad(x, w, b, epilogue.preluWeight, epilogue.residual);
  return scope(() => {
    const { xc, wc, bc, ep } = operands(name, x, w, b, epilogue, outShape, grad);
    const out = gemm({ mode: 1, geom, groups, batch, M: CoutG, cinG: CinG, a: wc, b: xc, context: name, outSpatial: outSp }, ep);
    if (!grad) return out;
    const inputs = [x, w, b, epilogue.preluWeight ?? null, epilogue.residual ?? null];
    return record(op, out, inputs, (g) => {
      const { dq, dres, dprelu } = epilogueBackward(dense(g), ep, Cout);
      const dx = x.requiresGrad ? gemm({ mode: 0, geom: bwdGeom, groups, batch, M: CinG, cinG: CoutG, a: wc, b: dq, context: `${name} backward (input)`, outSpatial: inSp }) : null;
      const dw = w.requiresGrad ? reshape(gemm({ mode: 2, geom: bwdGeom, groups, batch, M: CinG, cinG: CoutG, a: xc, b: dq, context: `${name} backward (weight)` }), w.shape) : null;
      const db = b?.requiresGrad ? biasGrad(dq) : null;
      return [dx, dw, db, dprelu, dres ? own(dres, g) : null];
    }, [xc, wc, bc, ep.prelu, ep.residual, ep.pre]);
  });
}

export function convTranspose1d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvTransposeOptions = {}): Tensor {
  if (x.ndim !== 3) throw new Error(`convTranspose1d: input must be 3-d [batch, C, L], got ${shapeStr(x.shape)}`);
  return convTranspose(x, w, b, options);
}

export function convTranspose2d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvTransposeOptions = {}): Tensor {
  if (x.ndim !== 4) throw new Error(`convTranspose2d: input must be 4-d [batch, C, H, W], got ${shapeStr(x.shape)}`);
  return convTranspose(x, w, b, options);
}

export function convTranspose3d(x: Tensor, w: Tensor, b: Tensor | null = null, options: ConvTransposeOptions = {}): Tensor {
  if (x.ndim !== 5) throw new Error(`convTranspose3d: input must be 5-d [batch, C, D, H, W], got ${shapeStr(x.shape)}`);
  return convTranspose(x, w, b, options);
}
