// TransUNet's load_from(): maps the ImageNet-21k `R50+ViT-B_16.npz` (flax names, NHWC/HWIO
// layouts) to TransUNet's PyTorch state_dict keys. Conversions (models/transunet.md section 4):
//   conv kernels HWIO -> OIHW (new[o,i,h,w] = old[h,w,i,o]);
//   attention q/k/v kernel [D, heads, dh] -> [D, heads*dh] -> transpose -> [heads*dh, D]; bias [heads, dh] -> flat;
//   attention out kernel [heads, dh, D] -> [heads*dh, D] -> transpose -> [D, heads*dh];
//   dense kernels [in, out] -> transpose; GroupNorm scale/bias (1,1,1,C) or (C) -> (C);
//   position embedding [1, 1+g*g, D] -> drop the class token (or, for another grid g',
//   bilinear align-corners resampling of the g x g grid to g' x g').
// decoder.* and segmentation_head.* have no npz counterpart (random init) and are not output.
import { derivedRecord, readFloat32, type TensorRecord } from '../record.js';
import type { Schema } from './index.js';

export const npzUnusedKeys = (k: string) => k === 'cls' || k.startsWith('pre_logits/') || k.startsWith('head/');
/** PyTorch keys load_from() does not fill. */
export const npzNotLoaded = (k: string) => k.startsWith('decoder.') || k.startsWith('segmentation_head.');

/** The part of a TransUNet schema load_from() fills: its encoder (e.g. for the .npz converted on its own). */
export function encoderSchema(schema: Schema): Schema {
  return {
    id: `${schema.id}_encoder`,
    model: 'transunet',
    description: `${schema.description}: the encoder only (the ImageNet-21k .npz's arrays)`,
    tensors: new Map([...schema.tensors].filter(([k]) => !npzNotLoaded(k))),
  };
}

type Transform = 'copy' | 'hwio' | 'flatten' | 'transpose' | 'qkv' | 'qkvBias' | 'out' | 'posemb';

const E = 'transformer.embeddings.';
const H = `${E}hybrid_model.`;

/** The PyTorch key and conversion for an npz array name; null if it is not one load_from() reads. */
export function npzTarget(name: string): { key: string; transform: Transform } | null {
  let m: RegExpExecArray | null;
  const ln = (s: string) => (s === 'scale' ? 'weight' : 'bias');
  if (name === 'embedding/kernel') return { key: `${E}patch_embeddings.weight`, transform: 'hwio' };
  if (name === 'embedding/bias') return { key: `${E}patch_embeddings.bias`, transform: 'copy' };
  if (name === 'Transformer/posembed_input/pos_embedding') return { key: `${E}position_embeddings`, transform: 'posemb' };
  if ((m = /^Transformer\/encoder_norm\/(scale|bias)$/.exec(name))) return { key: `transformer.encoder.encoder_norm.${ln(m[1])}`, transform: 'copy' };
  if ((m = /^Transformer\/encoderblock_(\d+)\/(.+)$/.exec(name))) {
    const L = `transformer.encoder.layer.${m[1]}.`;
    const rest = m[2];
    let r: RegExpExecArray | null;
    if ((r = /^LayerNorm_0\/(scale|bias)$/.exec(rest))) return { key: `${L}attention_norm.${ln(r[1])}`, transform: 'copy' };
    if ((r = /^LayerNorm_2\/(scale|bias)$/.exec(rest))) return { key: `${L}ffn_norm.${ln(r[1])}`, transform: 'copy' };
    if ((r = /^MultiHeadDotProductAttention_1\/(query|key|value)\/(kernel|bias)$/.exec(rest))) return { key: `${L}attn.${r[1]}.${r[2] === 'kernel' ? 'weight' : 'bias'}`, transform: r[2] === 'kernel' ? 'qkv' : 'qkvBias' };
    if ((r = /^MultiHeadDotProductAttention_1\/out\/(kernel|bias)$/.exec(rest))) return { key: `${L}attn.out.${r[1] === 'kernel' ? 'weight' : 'bias'}`, transform: r[1] === 'kernel' ? 'out' : 'copy' };
    if ((r = /^MlpBlock_3\/Dense_([01])\/(kernel|bias)$/.exec(rest))) return { key: `${L}ffn.fc${Number(r[1]) + 1}.${r[2] === 'kernel' ? 'weight' : 'bias'}`, transform: r[2] === 'kernel' ? 'transpose' : 'copy' };
    return null;
  }
  if (name === 'conv_root/kernel') return { key: `${H}root.conv.weight`, transform: 'hwio' };
  if ((m = /^gn_root\/(scale|bias)$/.exec(name))) return { key: `${H}root.gn.${ln(m[1])}`, transform: 'flatten' };
  if ((m = /^block(\d+)\/unit(\d+)\/(.+)$/.exec(name))) {
    const U = `${H}body.block${m[1]}.unit${m[2]}.`;
    const rest = m[3];
    let r: RegExpExecArray | null;
    if ((r = /^conv([123])\/kernel$/.exec(rest))) return { key: `${U}conv${r[1]}.weight`, transform: 'hwio' };
    if ((r = /^gn([123])\/(scale|bias)$/.exec(rest))) return { key: `${U}gn${r[1]}.${ln(r[2])}`, transform: 'flatten' };
    if (rest === 'conv_proj/kernel') return { key: `${U}downsample.weight`, transform: 'hwio' };
    if ((r = /^gn_proj\/(scale|bias)$/.exec(rest))) return { key: `${U}gn_proj.${ln(r[1])}`, transform: 'flatten' };
  }
  return null;
}

/** Output shape of a conversion, or an error message when the input rank does not fit it. */
export function npzTargetShape(transform: Transform, s: readonly number[], target: readonly number[] | undefined): number[] | string {
  const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
  switch (transform) {
    case 'copy':
      return [...s];
    case 'hwio':
      return s.length === 4 ? [s[3], s[2], s[0], s[1]] : `expected a 4-d HWIO kernel, got [${s}]`;
    case 'flatten':
      return [prod(s)];
    case 'transpose':
      return s.length === 2 ? [s[1], s[0]] : `expected a 2-d kernel, got [${s}]`;
    case 'qkv':
      return s.length === 3 ? [s[1] * s[2], s[0]] : `expected a [D, heads, dh] kernel, got [${s}]`;
    case 'qkvBias':
      return s.length === 2 ? [s[0] * s[1]] : `expected a [heads, dh] bias, got [${s}]`;
    case 'out':
      return s.length === 3 ? [s[2], s[0] * s[1]] : `expected a [heads, dh, D] kernel, got [${s}]`;
    case 'posemb': {
      if (s.length !== 3 || s[0] !== 1) return `expected a [1, tokens, D] embedding, got [${s}]`;
      if (!target || target.length !== 3 || target[2] !== s[2]) return [1, s[1] - 1, s[2]];
      if (target[1] === s[1] || target[1] === s[1] - 1) return [...target];
      const gOld = Math.sqrt(s[1] - 1);
      const gNew = Math.sqrt(target[1]);
      if (!Number.isInteger(gOld) || !Number.isInteger(gNew)) return `cannot resample ${s[1] - 1} grid tokens to ${target[1]} (not square grids)`;
      return [...target];
    }
  }
}

function transposeHWIO(v: Float32Array, [h, w, i, o]: readonly number[]): Float32Array {
  const out = new Float32Array(v.length);
  for (let a = 0; a < h; a++)
    for (let b = 0; b < w; b++)
      for (let c = 0; c < i; c++)
        for (let d = 0; d < o; d++) out[((d * i + c) * h + a) * w + b] = v[((a * w + b) * i + c) * o + d];
  return out;
}

function transpose2(v: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c];
  return out;
}

/** Bilinear, corner-aligned (scipy.ndimage.zoom order=1) resampling of a [g, g, D] grid to [n, n, D]. */
function resampleGrid(v: Float32Array, g: number, n: number, d: number): Float32Array {
  const out = new Float32Array(n * n * d);
  const coord = (i: number) => {
    const src = n === 1 ? 0 : (i * (g - 1)) / (n - 1);
    const i0 = Math.min(Math.floor(src), g - 1);
    return { i0, i1: Math.min(i0 + 1, g - 1), t: src - i0 };
  };
  for (let y = 0; y < n; y++) {
    const cy = coord(y);
    for (let x = 0; x < n; x++) {
      const cx = coord(x);
      for (let c = 0; c < d; c++) {
        const at = (yy: number, xx: number) => v[(yy * g + xx) * d + c];
        const top = (1 - cx.t) * at(cy.i0, cx.i0) + cx.t * at(cy.i0, cx.i1);
        const bot = (1 - cx.t) * at(cy.i1, cx.i0) + cx.t * at(cy.i1, cx.i1);
        out[(y * n + x) * d + c] = (1 - cy.t) * top + cy.t * bot;
      }
    }
  }
  return out;
}

/** The converted record for an npz array (shape already checked with npzTargetShape). */
export function npzConvertedRecord(src: TensorRecord, key: string, transform: Transform, shape: number[]): TensorRecord {
  const s = src.shape;
  return derivedRecord(key, shape, async () => {
    const v = await readFloat32(src);
    switch (transform) {
      case 'copy':
      case 'flatten':
      case 'qkvBias':
        return v;
      case 'hwio':
        return transposeHWIO(v, s);
      case 'transpose':
        return transpose2(v, s[0], s[1]);
      case 'qkv':
        return transpose2(v, s[0], s[1] * s[2]);
      case 'out':
        return transpose2(v, s[0] * s[1], s[2]);
      case 'posemb': {
        if (shape[1] === s[1]) return v;
        if (shape[1] === s[1] - 1) return v.slice(s[2]);
        return resampleGrid(v.subarray(s[2]), Math.sqrt(s[1] - 1), Math.sqrt(shape[1]), s[2]);
      }
    }
  });
}
