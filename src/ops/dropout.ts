// F.dropout: zeroes each element with probability p and scales the rest by 1/(1-p) in training;
// the identity otherwise. The mask is a hash of (seed, index) computed in shaders/dropout.wgsl, so
// the backward (dy masked and scaled the same way) reruns the kernel with the same seed.
import { scope } from '../scope.js';
import { noGrad, record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor, rng, shapeStr, zeros } from '../tensor.js';
import { contiguous } from './shape.js';

export interface DropoutOptions {
  /** mask seed; without one, the next value of dropout's own seeded stream */
  seed?: number;
}

let stream = rng(0xd509);

/** Reseeds the stream F.dropout draws mask seeds from when no seed is given. */
export function dropoutSeed(seed: number): void {
  stream = rng(seed);
}

function launch(src: Tensor, p: number, seed: number, context: string): Tensor {
  const out = Tensor.empty(src.shape, context);
  const n = out.size;
  if (n === 0) return out;
  runtime().dispatch({
    kernel: 'dropout',
    entry: 'dropout',
    params: { n, seed: seed >>> 0, threshold: Math.min(Math.floor(p * 4294967296), 4294967295), src_offset: src.offset, scale: 1 / (1 - p) },
    buffers: { src: src.storage.buffer, out: out.storage.buffer },
    workgroups: Math.ceil(n / 256),
    context,
  });
  return out;
}

export function dropout(x: Tensor, p = 0.5, training = true, options: DropoutOptions = {}): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: p must be in [0, 1], got ${p}`);
  // identity: a new handle (recorded), so disposing the input never invalidates the output
  if (!training || p === 0) return record('dropout', x.view(x.shape, x.strides), [x], (g) => [g]);
  if (p === 1) {
    const z = zeros(x.shape);
    return record('dropout', z, [x], (g) => [zeros(g.shape)]);
  }
  const seed = options.seed ?? Math.floor(stream() * 4294967296);
  const name = `dropout(${shapeStr(x.shape)}, p=${p})`;
  const out = scope(() => launch(x.isContiguous() ? x : noGrad(() => contiguous(x)), p, seed, name));
  return record('dropout', out, [x], (g) => [launch(g.isContiguous() ? g : contiguous(g), p, seed, `${name} backward`)]);
}
