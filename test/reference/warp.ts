// Float64 reference for F.warp: each output voxel samples the input at its own position plus the
// field's displacement, clamped to the input's border; trilinear weights the 8 neighbours,
// nearest takes the rounded position.

/** x [N, C, ...inSize] and field [N, 3, ...outSize] as flat arrays; returns [N, C, ...outSize]. */
export function warpRef(x: ArrayLike<number>, inSize: number[], field: ArrayLike<number>, outSize: number[], N: number, C: number, mode: 'trilinear' | 'nearest'): Float64Array {
  const [Di, Hi, Wi] = inSize;
  const [D, H, W] = outSize;
  const ivol = Di * Hi * Wi;
  const ovol = D * H * W;
  const out = new Float64Array(N * C * ovol);
  const clamp = (v: number, n: number) => Math.min(Math.max(v, 0), n - 1);
  for (let n = 0; n < N; n++)
    for (let z = 0; z < D; z++)
      for (let y = 0; y < H; y++)
        for (let xx = 0; xx < W; xx++) {
          const o = (z * H + y) * W + xx;
          const f = (k: number) => field[(n * 3 + k) * ovol + o];
          const p = [clamp(z + f(0), Di), clamp(y + f(1), Hi), clamp(xx + f(2), Wi)];
          for (let c = 0; c < C; c++) {
            const src = (a: number, b: number, d: number) => x[(n * C + c) * ivol + (a * Hi + b) * Wi + d];
            let v = 0;
            if (mode === 'nearest') v = src(Math.round(p[0]), Math.round(p[1]), Math.round(p[2]));
            else {
              const lo = p.map(Math.floor);
              const hi = lo.map((l, i) => Math.min(l + 1, [Di, Hi, Wi][i] - 1));
              const t = p.map((q, i) => q - lo[i]);
              for (let corner = 0; corner < 8; corner++) {
                const pick = [(corner >> 2) & 1, (corner >> 1) & 1, corner & 1];
                const w = pick.reduce((acc, bit, i) => acc * (bit ? t[i] : 1 - t[i]), 1);
                v += w * src(pick[0] ? hi[0] : lo[0], pick[1] ? hi[1] : lo[1], pick[2] ? hi[2] : lo[2]);
              }
            }
            out[(n * C + c) * ovol + o] = v;
          }
        }
  return out;
}
