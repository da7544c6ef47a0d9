// Shared by the TransUNet tests: the value formula of test/fixtures/transunet_reference.py
// (medsam-helpers.ts's fixtureValues with TransUNet's spreadOf), filling a module's state dict with
// it, and reading the PyTorch goldens.
import { expect } from 'vitest';
import { tensor, type Tensor } from '../../src/tensor.js';
import type { Module } from '../../src/nn/module.js';
import type { TransUNetConfig } from '../../src/models/index.js';
import { TRANSUNET_GOLDENS } from '../fixtures/transunet_goldens.js';
import { expectClose } from '../helpers.js';
import type { Tolerance } from '../tolerance.js';
import { fixtureValues, relErr } from './medsam-helpers.js';

/** Centre and spread of a named tensor's values (transunet_reference.py's spread_of). */
export function spreadOf(name: string, shape: readonly number[]): [number, number] {
  if (name.endsWith('position_embeddings')) return [0, 0.5];
  if (name.endsWith('running_var')) return [1, 0.2];
  if (shape.length === 1 && /(gn\d?|gn_proj|norm|\.1)\.weight$/.test(name)) return [1, 0.2];
  if (shape.length <= 1) return [0, 0.1];
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  // the decoder's conv + BN + ReLU chain at He scale, so the deep (transformer) path still shows in the logits
  if (name.includes('decoder.') && shape.length === 4) return [0, Math.sqrt(6 / fanIn)];
  return [0, 1 / Math.sqrt(fanIn)];
}

export function values(name: string, shape: readonly number[], center?: number, spread?: number): Float32Array {
  const [c, s] = center === undefined ? spreadOf(name, shape) : [center, spread!];
  return fixtureValues(name, shape, c, s);
}

export function fixtureTensor(name: string, shape: readonly number[], center: number, spread: number, requiresGrad = false): Tensor {
  return tensor(values(name, shape, center, spread), shape, { requiresGrad });
}

/** The formula's values for every parameter and buffer of m except num_batches_tracked (keys prefixed by `prefix` for the seed). */
export function fillModule(m: Module, prefix = ''): void {
  const dict = new Map<string, Tensor>();
  for (const [k, t] of m.stateDict()) if (!k.endsWith('num_batches_tracked')) dict.set(k, tensor(values(prefix + k, t.shape), t.shape));
  try {
    m.loadStateDict(dict, { strict: false });
  } finally {
    for (const t of dict.values()) t.dispose();
  }
}

/**
 * The longest chain of f32 sums behind TransUNet's logits, as the tolerance policy counts them
 * (chains add in quadrature, so a chain of K-term sums counts as one sum of their total K): per
 * conv cin k^2, per GroupNorm its group size, per ViT block LN, q/k/v, scores, softmax and P V over
 * the tokens, out, LN, fc1, fc2; the decoder's convs and 4-tap upsampling.
 */
export function chainK(c: TransUNetConfig, imgSize: number): number {
  const w = Math.trunc(64 * c.widthFactor);
  let s = imgSize / 2;
  let K = 3 * 49 + (w / c.gnGroups) * s * s;
  s = Math.floor((s - 3) / 2) + 1;
  const stages: [number, number, number][] = [[w, 4 * w, w], [4 * w, 8 * w, 2 * w], [8 * w, 16 * w, 4 * w]];
  stages.forEach(([cin, cout, cmid], b) => {
    for (let u = 0; u < c.blockUnits[b]; u++) {
      if (u === 0 && b > 0) s = Math.ceil(s / 2);
      const area = s * s;
      K += (u === 0 ? cin : cout) + 9 * cmid + cmid + ((2 * cmid + cout) / c.gnGroups) * area;
    }
  });
  const T = (imgSize / 16) ** 2;
  const D = c.hidden;
  K += 16 * w + c.numLayers * (D + D + D / c.numHeads + 2 * T + D + D + D + c.mlpDim) + D;
  K += 9 * D;
  let ch = c.headChannels;
  for (let k = 0; k < 4; k++) {
    K += 4 + 9 * (ch + c.skipChannels[k]) + 9 * c.decoderChannels[k];
    ch = c.decoderChannels[k];
  }
  return K + 9 * ch;
}

export function golden(name: string): { shape: number[]; data: Float32Array } {
  const g = TRANSUNET_GOLDENS[name];
  if (!g) throw new Error(`no TransUNet golden '${name}' (regenerate with test/fixtures/transunet_reference.py)`);
  const bin = atob(g.data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return { shape: g.shape, data: new Float32Array(bytes.buffer) };
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

/** The bytes of a file in test/fixtures/ (Node: the file system; browser: the Vite server). */
export async function fixtureBytes(name: string): Promise<Uint8Array> {
  const url = new URL(`../fixtures/${name}`, import.meta.url);
  if (typeof window === 'undefined') {
    const fs = await import('node:fs/promises');
    return new Uint8Array(await fs.readFile(url));
  }
  const r = await fetch(url);
  if (!r.ok) throw new Error(`fixture ${name}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}
