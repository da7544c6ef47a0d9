// Float64 traces of torch.optim's documented update rules (SGD, Adam, AdamW), one step at a time,
// written from the algorithm boxes in PyTorch's documentation.

export interface SgdRef {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: boolean;
}

/** Parameters after each step, given the gradient of every step (lr may change per step). */
export function sgdTrace(p0: ArrayLike<number>, grads: ArrayLike<number>[], o: SgdRef, lrs?: number[]): Float64Array[] {
  const p = Float64Array.from(p0);
  let b: Float64Array | null = null;
  const out: Float64Array[] = [];
  const mu = o.momentum ?? 0;
  const tau = o.dampening ?? 0;
  const wd = o.weightDecay ?? 0;
  grads.forEach((grad, t) => {
    const lr = lrs ? lrs[t] : o.lr;
    const g = Float64Array.from(grad, (v, i) => (o.maximize ? -v : v) + wd * p[i]);
    if (mu !== 0) {
      if (b === null) b = Float64Array.from(g);
      else for (let i = 0; i < g.length; i++) b[i] = mu * b[i] + (1 - tau) * g[i];
      for (let i = 0; i < g.length; i++) g[i] = o.nesterov ? g[i] + mu * b[i] : b[i];
    }
    for (let i = 0; i < p.length; i++) p[i] -= lr * g[i];
    out.push(Float64Array.from(p));
  });
  return out;
}

export interface AdamRef {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
  /** AdamW: p <- p (1 - lr wd) instead of g <- g + wd p */
  decoupled?: boolean;
}

export function adamTrace(p0: ArrayLike<number>, grads: ArrayLike<number>[], o: AdamRef): { params: Float64Array[]; m: Float64Array; v: Float64Array } {
  const [b1, b2] = o.betas ?? [0.9, 0.999];
  const eps = o.eps ?? 1e-8;
  const wd = o.weightDecay ?? 0;
  const n = p0.length;
  const p = Float64Array.from(p0);
  const m = new Float64Array(n);
  const v = new Float64Array(n);
  const vmax = new Float64Array(n);
  const params: Float64Array[] = [];
  grads.forEach((grad, k) => {
    const t = k + 1;
    for (let i = 0; i < n; i++) {
      let g = o.maximize ? -grad[i] : grad[i];
      if (wd !== 0) {
        if (o.decoupled) p[i] *= 1 - o.lr * wd;
        else g += wd * p[i];
      }
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const mHat = m[i] / (1 - b1 ** t);
      let vHat: number;
      if (o.amsgrad) {
        vmax[i] = Math.max(vmax[i], v[i]);
        vHat = vmax[i] / (1 - b2 ** t);
      } else vHat = v[i] / (1 - b2 ** t);
      p[i] -= (o.lr * mHat) / (Math.sqrt(vHat) + eps);
    }
    params.push(Float64Array.from(p));
  });
  return { params, m, v };
}
