// Shape classes of the tunable kernel families (what their KernelFamilySpec.shapeClass is set to):
// problems of one class share a tuned choice. Sizes fall in power-of-4 buckets (16, 64, 256, ...),
// so a model's launches fall in a few classes and the tuner measures each once. matmul and conv see
// their GEMM's M x N x K (conv also whether the direct kernels can run it); attention chooses per
// head dim.
const bucket = (n: number) => 4 ** Math.max(1, Math.round(Math.log(Math.max(n, 1)) / Math.log(4)));

/** matmul's class: its M x N x K in buckets. */
export const gemmClass = (p: { M: number; N: number; K: number }) => `${bucket(p.M)}x${bucket(p.N)}x${bucket(p.K)}`;

/** conv's class: its implicit GEMM's, and whether the direct kernels can run it. */
export const convClass = (p: { M: number; N: number; K: number; direct: boolean }) => `${gemmClass(p)}${p.direct ? ' direct' : ''}`;

/** attention's class: the head dim. */
export const headDimClass = (p: { D: number }) => `D${p.D}`;
