// warp: resamples a volume at positions moved by a dense displacement field (trilinear, or nearest
// for labels; border padding), for data augmentation: a random smooth field deforms a training
// patch and its label alike. No backward: the op refuses inputs that require gradients.
//   out[n, c, z, y, x] = x[n, c] at (z + field[n, 0, z, y, x], y + field[n, 1, ...], x + field[n, 2, ...])
import { scope } from '../scope.js';
import { isGradEnabled } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor, shapeStr } from '../tensor.js';
import { contiguous } from './shape.js';

export interface WarpOptions {
  /** 'trilinear' (default) for images, 'nearest' for label maps */
  mode?: 'trilinear' | 'nearest';
}

/**
 * x [N, C, Di, Hi, Wi], field [N, 3, D, H, W] (voxel displacements along D, H, W of x) ->
 * [N, C, D, H, W]. Positions outside x are clamped to its border.
 */
export function warp(x: Tensor, field: Tensor, options: WarpOptions = {}): Tensor {
  x.assertAlive();
  field.assertAlive();
  const mode = options.mode ?? 'trilinear';
  const name = `warp[${mode}](${shapeStr(x.shape)}, ${shapeStr(field.shape)})`;
  if (mode !== 'trilinear' && mode !== 'nearest') throw new Error(`warp: mode must be 'trilinear' or 'nearest', got '${mode}'`);
  if (x.ndim !== 5) throw new Error(`${name}: x must be 5-d [N, C, D, H, W]`);
  if (field.ndim !== 5 || field.shape[1] !== 3 || field.shape[0] !== x.shape[0]) {
    throw new Error(`${name}: field must be [N, 3, D, H, W] with x's N = ${x.shape[0]}`);
  }
  if (isGradEnabled() && (x.requiresGrad || field.requiresGrad)) {
    throw new Error(`${name}: warp has no backward (it is for augmenting data); detach the inputs or run it under noGrad`);
  }
  const [N, C] = x.shape;
  const outSize = field.shape.slice(2);
  const out = Tensor.empty([N, C, ...outSize], name);
  if (out.size === 0) return out;
  if (x.size === 0) throw new Error(`${name}: x is empty`);
  scope(() => {
    const xc = x.isContiguous() ? x : contiguous(x);
    const fc = field.isContiguous() ? field : contiguous(field);
    runtime().dispatch({
      kernel: 'warp',
      entry: 'warp',
      overrides: { MODE: mode === 'nearest' ? 0 : 1 },
      params: { in_size: [...x.shape.slice(2), 0], out_size: [...outSize, 0], channels: C, n: out.size, x_offset: xc.offset, f_offset: fc.offset },
      buffers: { x_in: xc.storage.buffer, field: fc.storage.buffer, out: out.storage.buffer },
      workgroups: Math.ceil(out.size / 256),
      context: name,
    });
  });
  return out;
}
