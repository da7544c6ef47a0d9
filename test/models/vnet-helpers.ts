// Shared by the V-Net tests: random parameters for a model, loading them, the reference's config,
// the whole-network tolerance, and the base width the numerical tests use.
import { models } from '../../src/index.js';
import { upload } from '../helpers.js';
import { Arr, randomArr } from '../reference/ndarray.js';
import type { VNetRefConfig } from '../reference/vnet.js';
import type { Tolerance } from '../tolerance.js';

/** Base channels of the numerical tests: the tiny code path at half its width (see vnet.test.ts). */
export const BASE = 2;

export type Options = ConstructorParameters<typeof models.VNet>[0];

// A whole network in f32 (about 20 convolutions of up to 1000 terms, each followed by a batch norm)
// against float64: the per-layer reduction tolerance (1e-5 * sqrt(K) ~ 3e-4) compounded over depth.
export const NET_TOL: Tolerance = { rtol: 2e-3, atol: 2e-3 };

/** Random parameters for every state-dict entry, scaled so activations stay O(1); f32-exact. */
export function randomState(net: models.VNet, seed: number): Map<string, Arr> {
  const out = new Map<string, Arr>();
  let i = 0;
  for (const [k, t] of net.stateDict()) {
    i++;
    if (k.endsWith('num_batches_tracked')) continue;
    const s = t.shape;
    let a: Arr;
    if (s.length === 5) {
      const fan = (k.includes('up_conv') ? s[0] : s[1]) * s[2] * s[3] * s[4];
      const b = Math.sqrt(3 / fan);
      a = randomArr(s, seed * 1000 + i, -b, b);
    } else if (k.endsWith('running_var')) a = randomArr(s, seed * 1000 + i, 0.5, 2);
    else if (/(bn1|adn\.N)\.weight$/.test(k)) a = randomArr(s, seed * 1000 + i, 0.5, 1.5);
    else if (/(relu\d|act_function\d?)\.weight$/.test(k)) a = randomArr(s, seed * 1000 + i, 0, 0.5);
    else a = randomArr(s, seed * 1000 + i, -0.5, 0.5);
    out.set(k, a);
  }
  return out;
}

export function loadArrs(net: models.VNet, state: Map<string, Arr>): void {
  const ts = new Map([...state].map(([k, a]) => [k, upload(a)]));
  net.loadStateDict(ts);
  for (const t of ts.values()) t.dispose();
}

export function refConfig(net: models.VNet, bn: 'batch' | 'running'): VNetRefConfig {
  const c = net.config;
  return { variant: c.variant, act: c.act, baseChannels: c.baseChannels, inChannels: c.inChannels, outChannels: c.outChannels, bn };
}

export function disposeNet(net: models.VNet): void {
  for (const t of net.stateDict().values()) {
    t.grad?.dispose();
    t.dispose();
  }
}

