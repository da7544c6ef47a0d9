// F.interpolate for 4D (NCHW) and 5D (NCDHW) inputs: 'nearest', 'bilinear', 'trilinear', with
// PyTorch's output sizes (floor(in * scaleFactor)) and coordinate rules for both alignCorners
// values (shaders/interpolate.wgsl). The map is linear in x, so the backward is its adjoint,
// computed as a gather per input element (deterministic, no atomics).
import { scope } from '../scope.js';
import { noGrad, record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor, shapeStr } from '../tensor.js';
import { contiguous } from './shape.js';
import { loopTiles } from './loop-budget.js';

export type InterpolateMode = 'nearest' | 'bilinear' | 'trilinear';

export interface InterpolateOptions {
  /** output spatial size: one number for every spatial dim, or one per dim */
  size?: number | readonly number[];
  /** multiplier per spatial dim; the output size is floor(in * scaleFactor) */
  scaleFactor?: number | readonly number[];
  mode?: InterpolateMode;
  /** linear modes only; PyTorch's default is false */
  alignCorners?: boolean;
}

interface Plan {
  inSize: number[];
  outSize: number[];
  scale: number[];
  q: number[];
  align: boolean;
  mode: 0 | 1;
  planes: number;
}

function perDim(v: number | readonly number[], k: number, what: string, x: Tensor): number[] {
  const a = typeof v === 'number' ? new Array<number>(k).fill(v) : [...v];
  if (a.length !== k) throw new Error(`interpolate: ${what} has ${a.length} values for the ${k} spatial dims of ${shapeStr(x.shape)}`);
  return a;
}

function plan(x: Tensor, o: InterpolateOptions): Plan {
  const mode = o.mode ?? 'nearest';
  const k = x.ndim - 2;
  if (k !== 2 && k !== 3) throw new Error(`interpolate: expects a 4D (NCHW) or 5D (NCDHW) input, got ${shapeStr(x.shape)}`);
  if (mode === 'bilinear' && k !== 2) throw new Error(`interpolate: 'bilinear' needs a 4D input, got ${shapeStr(x.shape)}`);
  if (mode === 'trilinear' && k !== 3) throw new Error(`interpolate: 'trilinear' needs a 5D input, got ${shapeStr(x.shape)}`);
  if (mode !== 'nearest' && mode !== 'bilinear' && mode !== 'trilinear') throw new Error(`interpolate: unknown mode '${mode}'`);
  if (mode === 'nearest' && o.alignCorners !== undefined) {
    throw new Error('interpolate: alignCorners only applies to the linear modes (as in PyTorch)');
  }
  if ((o.size === undefined) === (o.scaleFactor === undefined)) throw new Error('interpolate: give exactly one of size and scaleFactor');
  const inSize = x.shape.slice(2);
  const sf = o.scaleFactor === undefined ? null : perDim(o.scaleFactor, k, 'scaleFactor', x);
  const outSize = o.size !== undefined ? perDim(o.size, k, 'size', x) : inSize.map((n, i) => Math.floor(n * sf![i]));
  if (outSize.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new Error(`interpolate: output size ${shapeStr(outSize)} from input ${shapeStr(x.shape)} must be positive integers`);
  }
  if (sf && sf.some((s) => !(s > 0))) throw new Error(`interpolate: scaleFactor ${shapeStr(sf)} must be positive`);
  const align = mode !== 'nearest' && (o.alignCorners ?? false);
  // PyTorch computes the coordinate scale in the tensor's precision (f32).
  const scale = inSize.map((n, i) => {
    if (align) return outSize[i] > 1 ? Math.fround((n - 1) / (outSize[i] - 1)) : 0;
    return Math.fround(sf ? 1 / sf[i] : n / outSize[i]);
  });
  const q = inSize.map((n, i) => (align ? (n > 1 ? (outSize[i] - 1) / (n - 1) : 3e38) : outSize[i] / n));
  const pad = (v: number[], fill: number) => (k === 2 ? [fill, ...v] : v);
  return {
    inSize: pad(inSize, 1),
    outSize: pad(outSize, 1),
    scale: pad(scale, 1),
    q: pad(q, 1),
    align,
    mode: mode === 'nearest' ? 0 : 1,
    planes: x.shape[0] * x.shape[1],
  };
}

/** Offsets past any window (the last tile of a dim runs to the window's end). */
const OPEN = 2 ** 30;

/**
 * The backward's window length bound per dim (d, h, w): the candidate window of shaders/interpolate.wgsl
 * spans at most 3q + 5 outputs (+ slack for its f32 rounding), and never more than the output.
 */
function windowBound(p: Plan): number[] {
  return p.q.map((q, d) => (q <= p.outSize[d] ? Math.min(p.outSize[d], Math.ceil(3 * q) + 9) : p.outSize[d]));
}

function launch(entry: 'forward' | 'backward', p: Plan, src: Tensor, outShape: number[], context: string): Tensor {
  const out = Tensor.empty(outShape, context);
  const n = out.size;
  if (n === 0) return out;
  const params = {
    in_size: [...p.inSize, 0],
    out_size: [...p.outSize, 0],
    scale: [...p.scale, 0],
    q: [...p.q, 0],
    planes: p.planes,
    n,
    align_corners: p.align ? 1 : 0,
    src_offset: src.offset,
  };
  const spec = { kernel: 'interpolate', entry, overrides: { MODE: p.mode }, buffers: { src: src.storage.buffer, out: out.storage.buffer }, workgroups: Math.ceil(n / 256), context };
  const rt = runtime();
  if (entry === 'forward') {
    rt.dispatch({ ...spec, params: { ...params, t0: [0, 0, 0, 0], t1: [0, 0, 0, 0], first: 1 } });
    return out;
  }
  // The gather's windows in tiles of at most LOOP_BUDGET loop passes (less ~256 for the bisections),
  // launched in row-major order, each adding to the last (llvmpipe's loop limit).
  const L = windowBound(p);
  const t = loopTiles(L, 256);
  const counts = L.map((l, d) => Math.ceil(l / t[d]));
  let first = 1;
  for (let a = 0; a < counts[0]; a++) {
    for (let b = 0; b < counts[1]; b++) {
      for (let c = 0; c < counts[2]; c++) {
        const k = [a, b, c];
        const t0 = k.map((i, d) => i * t[d]);
        const t1 = k.map((i, d) => (i === counts[d] - 1 ? OPEN : (i + 1) * t[d]));
        rt.dispatch({ ...spec, params: { ...params, t0: [...t0, 0], t1: [...t1, 0], first } });
        first = 0;
      }
    }
  }
  return out;
}

/** torch.nn.functional.interpolate for 4D/5D inputs. */
export function interpolate(x: Tensor, options: InterpolateOptions): Tensor {
  x.assertAlive();
  const p = plan(x, options);
  const k = x.ndim - 2;
  const outShape = [x.shape[0], x.shape[1], ...p.outSize.slice(3 - k)];
  const name = `interpolate[${options.mode ?? 'nearest'}${p.align ? ', alignCorners' : ''}](${shapeStr(x.shape)} -> ${shapeStr(outShape)})`;
  // The copy is internal: the node below is recorded against x itself.
  const out = scope(() => launch('forward', p, x.isContiguous() ? x : noGrad(() => contiguous(x)), outShape, name));
  return record('interpolate', out, [x], (g) => [launch('backward', p, g.isContiguous() ? g : contiguous(g), [...x.shape], `${name} backward`)]);
}
