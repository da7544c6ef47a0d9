// Shared by the MedSAM tests: the value formula that test/fixtures/medsam_reference.py also uses
// (so the PyTorch goldens and the TS model see the same weights and inputs without storing them),
// filling a module's state dict with it, and reading the goldens.
import { expect } from 'vitest';
import { rng, tensor, type Tensor } from '../../src/tensor.js';
import type { Module } from '../../src/nn/module.js';
import type { MedSAMConfig } from '../../src/models/index.js';
import { MEDSAM_GOLDENS } from '../fixtures/medsam_goldens.js';
import { expectClose } from '../helpers.js';
import type { Tolerance } from '../tolerance.js';

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

const LN_WEIGHT = /(norm\d*|norm_final_attn|neck\.[13]|mask_downscaling\.[14]|output_upscaling\.1)\.weight$/;
const EMBEDDING = /(iou_token|mask_tokens|point_embeddings\.\d+|not_a_point_embed|no_mask_embed)\.weight$/;

/** Centre and spread of a named tensor's values (medsam_reference.py's spread_of). */
function spreadOf(name: string, shape: readonly number[]): [number, number] {
  if (/(^|\.)(pos_embed|rel_pos_[hw])$/.test(name)) return [0, 0.5];
  if (name.endsWith('positional_encoding_gaussian_matrix')) return [0, 1.5];
  if (EMBEDDING.test(name)) return [0, 1];
  if (shape.length === 1 && LN_WEIGHT.test(name)) return [1, 0.2];
  if (shape.length === 1) return [0, 0.1];
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return [0, 1 / Math.sqrt(fanIn)];
}

/** fround(centre + spread (2u - 1)), u from rng(fnv1a(name)): medsam_reference.py's fixture_values. */
export function fixtureValues(name: string, shape: readonly number[], center?: number, spread?: number): Float32Array {
  const [c, s] = center === undefined ? spreadOf(name, shape) : [center, spread!];
  const n = shape.reduce((a, b) => a * b, 1);
  const r = rng(fnv1a(name));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = c + s * (2 * r() - 1);
  return out;
}

export function fixtureTensor(name: string, shape: readonly number[], center?: number, spread?: number, requiresGrad = false): Tensor {
  return tensor(fixtureValues(name, shape, center, spread), shape, { requiresGrad });
}

/** Loads the formula's values into every parameter and buffer of m (keys prefixed by `prefix` for the seed). */
export function fillModule(m: Module, prefix = ''): void {
  const dict = new Map<string, Tensor>();
  for (const [k, t] of m.stateDict()) dict.set(k, tensor(fixtureValues(prefix + k, t.shape), t.shape));
  m.loadStateDict(dict);
  for (const t of dict.values()) t.dispose();
}

export function golden(name: string): { shape: number[]; data: Float32Array } {
  const g = MEDSAM_GOLDENS[name];
  if (!g) throw new Error(`no MedSAM golden '${name}' (regenerate with test/fixtures/medsam_reference.py)`);
  const bin = atob(g.data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return { shape: g.shape, data: new Float32Array(bytes.buffer) };
}

/** Largest |got - want| over the largest |want|: what the tests report. */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < want.length; i++) {
    e = Math.max(e, Math.abs(got[i] - want[i]));
    s = Math.max(s, Math.abs(want[i]));
  }
  return e / s;
}

/** Compares a tensor with the golden of that name: shape, then values under tol; logs the error. */
export async function expectGolden(t: Tensor, name: string, tol: Tolerance): Promise<number> {
  const g = golden(name);
  expect(t.shape, `${name}: shape`).toEqual(g.shape);
  const got = await t.read();
  const err = relErr(got, g.data);
  console.log(`${name}: max |err| / max |want| = ${err.toExponential(2)} (rtol ${tol.rtol.toExponential(1)})`);
  expectClose(got, g.data, tol, name);
  return err;
}

/**
 * The longest chain of f32 sums behind the image embedding (encoderK) and behind the decoder's
 * masks on top of it (decoderK), as the tolerance policy counts them: independent roundings add in
 * quadrature, so a chain of K-term sums counts as one sum of their total K.
 * encoder: patch conv (3 p^2), per block LN, qkv, scores, the softmax's and P V's key sums, proj, LN,
 * lin1, lin2; the neck's 1x1 and 3x3 convs and LNs. decoder: per two-way layer four attentions
 * (projection, scores, keys twice, out_proj), the MLP and four LNs; the final attention, upscaling,
 * hypernetwork MLP and the mask product.
 */
export function chainLengths(c: MedSAMConfig): { encoderK: number; decoderK: number } {
  const D = c.encoderEmbedDim;
  const P = c.promptEmbedDim;
  const grid = c.imageSize / c.patchSize;
  const block = (keys: number) => 3 * D + D / c.encoderNumHeads + 2 * keys + D + D + D * c.mlpRatio;
  let encoderK = 3 * c.patchSize ** 2 + D + P + 9 * P + P;
  for (let i = 0; i < c.encoderDepth; i++) encoderK += block(c.encoderGlobalAttnIndexes.includes(i) ? grid * grid : c.windowSize ** 2);
  const tokens = 1 + (c.numMultimaskOutputs + 1) + 2;
  const attn = (keys: number) => 2 * P + 2 * keys + P;
  const layer = attn(tokens) + 2 * attn(grid * grid) + P + c.decoderMlpDim + 4 * P;
  const decoderK = c.decoderDepth * layer + attn(grid * grid) + P + 4 * P + P / 4 + 3 * P + P / 8;
  return { encoderK, decoderK };
}
