// 2d max and average pooling with PyTorch's semantics (kernel, stride defaulting to the kernel,
// padding, dilation for max, ceilMode, countIncludePad for average) over [N, C, H, W] or [C, H, W].
// Max pooling keeps the argmax indices (h*W + w within each plane, as PyTorch's return_indices)
// for its backward; both backwards are gathers over the windows that reach each input element
// (shaders/pool.wgsl), so overlapping windows need no atomics.
import { scope } from '../scope.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { runtime, type DispatchSpec } from '../gpu/runtime.js';
import { Tensor, shapeStr } from '../tensor.js';
import { contiguous } from './shape.js';
import { loopTiles } from './loop-budget.js';

type Pair = number | readonly [number, number] | readonly number[];

export interface MaxPool2dOptions {
  stride?: Pair | null;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

export interface AvgPool2dOptions {
  stride?: Pair | null;
  padding?: Pair;
  ceilMode?: boolean;
  countIncludePad?: boolean;
}

function pair(v: Pair | undefined | null, dflt: [number, number], what: string, op: string): [number, number] {
  if (v === undefined || v === null) return dflt;
  const p = typeof v === 'number' ? [v, v] : [...v];
  if (p.length !== 2 || p.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`${op}: ${what} must be an int or 2 non-negative ints, got ${JSON.stringify(v)}`);
  return p as [number, number];
}

function outSize(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = n + 2 * p - d * (k - 1) - 1;
  let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // The last window must start inside the input or its leading padding (PyTorch).
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

interface Geometry {
  planes: number;
  H: number;
  W: number;
  OH: number;
  OW: number;
  k: [number, number];
  s: [number, number];
  p: [number, number];
  d: [number, number];
  outShape: number[];
}

function geometry(op: string, x: Tensor, kernel: Pair, stride: Pair | null | undefined, padding: Pair | undefined, dilation: Pair | undefined, ceil: boolean): Geometry {
  if (x.ndim !== 3 && x.ndim !== 4) throw new Error(`${op}: input must be [N, C, H, W] or [C, H, W], got ${shapeStr(x.shape)}`);
  const k = pair(kernel, [1, 1], 'kernel', op);
  const s = pair(stride, k, 'stride', op);
  const p = pair(padding, [0, 0], 'padding', op);
  const d = pair(dilation, [1, 1], 'dilation', op);
  if (k.some((v) => v < 1) || s.some((v) => v < 1) || d.some((v) => v < 1)) throw new Error(`${op}: kernel, stride and dilation must be >= 1`);
  if (p.some((v, i) => v > (d[i] * (k[i] - 1) + 1) / 2)) throw new Error(`${op}: padding ${shapeStr(p)} must be at most half the kernel ${shapeStr(k)}`);
  const H = x.shape[x.ndim - 2];
  const W = x.shape[x.ndim - 1];
  const OH = outSize(H, k[0], s[0], p[0], d[0], ceil);
  const OW = outSize(W, k[1], s[1], p[1], d[1], ceil);
  if (OH < 1 || OW < 1) throw new Error(`${op}: output would be ${OH}x${OW} for input ${shapeStr(x.shape)}`);
  const planes = x.size / (H * W);
  return { planes, H, W, OH, OW, k, s, p, d, outShape: [...x.shape.slice(0, -2), OH, OW] };
}

function params(g: Geometry, srcOffset: number, countIncludePad: boolean) {
  return {
    planes: g.planes,
    H: g.H,
    W: g.W,
    OH: g.OH,
    OW: g.OW,
    kh: g.k[0],
    kw: g.k[1],
    sh: g.s[0],
    sw: g.s[1],
    ph: g.p[0],
    pw: g.p[1],
    dh: g.d[0],
    dw: g.d[1],
    count_include_pad: countIncludePad ? 1 : 0,
    src_offset: srcOffset,
  };
}

/**
 * Dispatches spec once per tile of its 2-level loop nest with these trip counts (window rows and
 * columns; in the backwards, the outputs that can reach an input element), in row-major order:
 * each launch resumes from the last one's results (shaders/pool.wgsl, llvmpipe's loop limit).
 */
function launchTiled(spec: DispatchSpec & { params: Record<string, number> }, trips: [number, number]): void {
  const [tr, tc] = loopTiles(trips);
  const nr = Math.ceil(trips[0] / tr);
  const nc = Math.ceil(trips[1] / tc);
  const rt = runtime();
  for (let i = 0; i < nr; i++) {
    for (let j = 0; j < nc; j++) {
      rt.dispatch({
        ...spec,
        params: {
          ...spec.params,
          r0: i * tr,
          r1: Math.min(trips[0], (i + 1) * tr),
          c0: j * tc,
          c1: Math.min(trips[1], (j + 1) * tc),
          first: i === 0 && j === 0 ? 1 : 0,
          last: i === nr - 1 && j === nc - 1 ? 1 : 0,
        },
      });
    }
  }
}

/** Most outputs along each dim whose window can reach one input element (the backward's gather). */
function reach(g: Geometry): [number, number] {
  return [0, 1].map((i) => Math.min([g.OH, g.OW][i], Math.floor(((g.k[i] - 1) * g.d[i]) / g.s[i]) + 1)) as [number, number];
}

function dense(t: Tensor): Tensor {
  return noGrad(() => contiguous(t));
}

/** Max pooling that also returns the argmax indices (f32 values of h*W + w within each plane). */
export function maxPool2dWithIndices(x: Tensor, kernelSize: Pair, options: MaxPool2dOptions = {}): [Tensor, Tensor] {
  const op = `maxPool2d(${shapeStr(x.shape)}, kernel=${JSON.stringify(kernelSize)})`;
  const g = geometry(op, x, kernelSize, options.stride, options.padding, options.dilation, !!options.ceilMode);
  return scope(() => {
    const xc = dense(x);
    const out = Tensor.empty(g.outShape, op);
    const idx = Tensor.empty(g.outShape, `${op} indices`);
    if (out.size > 0) {
      launchTiled({
        kernel: 'pool',
        entry: 'max_forward',
        params: params(g, xc.offset, false),
        buffers: { x: xc.buffer, out: out.buffer, idx: idx.buffer },
        workgroups: Math.ceil(out.size / 64),
        context: op,
      }, g.k);
    }
    // The backward's own handle on the indices: the caller may dispose the returned one.
    const saved = idx.view(idx.shape, idx.strides);
    const y = record('maxPool2d', out, [x], (dy) => {
      const dyc = contiguous(dy);
      const dx = Tensor.empty(x.shape, `${op} backward`);
      launchTiled({
        kernel: 'pool',
        entry: 'max_backward',
        params: params(g, dyc.offset, false),
        buffers: { dy: dyc.buffer, saved_idx: saved.buffer, dx: dx.buffer },
        workgroups: Math.ceil(dx.size / 64),
        context: `${op} backward`,
      }, reach(g));
      return [dx];
    }, [saved]);
    return [y, idx];
  });
}

export function maxPool2d(x: Tensor, kernelSize: Pair, options: MaxPool2dOptions = {}): Tensor {
  return scope(() => maxPool2dWithIndices(x, kernelSize, options)[0]);
}

export function avgPool2d(x: Tensor, kernelSize: Pair, options: AvgPool2dOptions = {}): Tensor {
  const op = `avgPool2d(${shapeStr(x.shape)}, kernel=${JSON.stringify(kernelSize)})`;
  const g = geometry(op, x, kernelSize, options.stride, options.padding, 1, !!options.ceilMode);
  const include = options.countIncludePad ?? true;
  const out = Tensor.empty(g.outShape, op);
  if (out.size > 0) {
    scope(() => {
      const xc = dense(x);
      launchTiled({
        kernel: 'pool',
        entry: 'avg_forward',
        params: params(g, xc.offset, include),
        buffers: { x: xc.buffer, out: out.buffer },
        workgroups: Math.ceil(out.size / 64),
        context: op,
      }, g.k);
    });
  }
  return record('avgPool2d', out, [x], (dy) => {
    const dyc = contiguous(dy);
    const dx = Tensor.empty(x.shape, `${op} backward`);
    launchTiled({
      kernel: 'pool',
      entry: 'avg_backward',
      params: params(g, dyc.offset, include),
      buffers: { dy: dyc.buffer, dx: dx.buffer },
      workgroups: Math.ceil(dx.size / 64),
      context: `${op} backward`,
    }, reach(g));
    return [dx];
  });
}
