// Shape classes of the tunable kernel families, by family name: problems of one class share a
// tuned choice. Sizes fall in power-of-4 buckets (16, 64, 256, ...), so a model's launches fall in
// a few classes and the tuner measures each once. matmul and conv see their GEMM's M x N x K (conv
// also whether the direct kernels can run it); attention chooses per head dim.
const bucket = (n: number) => 4 ** Math.max(1, Math.round(Math.log(Math.max(n, 1)) / Math.log(4)));

const gemm = (p: { M: number; N: number; K: number }) => `${bucket(p.M)}x${bucket(p.N)}x${bucket(p.K)}`;

export const shapeClasses: Readonly<Record<string, (p: never) => string>> = {
  matmul: (p: { M: number; N: number; K: number }) => gemm(p),
  conv: (p: { M: number; N: number; K: number; direct: boolean }) => `${gemm(p)}${p.direct ? ' direct' : ''}`,
  attention: (p: { D: number }) => `D${p.D}`,
};

/**
 * Variants a tuned table never picks for a whole class, because the class does not bound what
 * they need: attention's class is the head dim alone, and the composition stores the Lq x Lk
 * scores (805 MB for MedSAM's 12 x 4096 x 4096 global blocks), so a choice timed on 196 tokens
 * must not reach 4096. They are still timed and listed.
 */
export const notClassWide: Readonly<Record<string, readonly string[]>> = {
  attention: ['composed'],
};
