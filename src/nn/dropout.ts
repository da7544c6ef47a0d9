// nn.Dropout(p): F.dropout in training mode, the identity in eval mode. Each call draws a new mask
// seed from the module's own stream, seeded by options.seed, so runs repeat exactly.
import { dropout } from '../ops/dropout.js';
import { Tensor, rng } from '../tensor.js';
import { Module } from './module.js';

let unseeded = 0x5eed0d;

export class Dropout extends Module {
  readonly p: number;
  private next: () => number;

  constructor(p = 0.5, options: { seed?: number } = {}) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`nn.Dropout: p must be in [0, 1], got ${p}`);
    this.p = p;
    this.next = rng(options.seed ?? (unseeded = (Math.imul(unseeded, 1664525) + 1013904223) >>> 0));
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return dropout(x, 0, false);
    return dropout(x, this.p, true, { seed: Math.floor(this.next() * 4294967296) });
  }
}
