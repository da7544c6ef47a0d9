// The V-Net paper's random smooth deformation: random displacements on a coarse grid of control
// points (`cells` B-spline cells per axis, so cells + 3 control points; the paper uses a 2x2x2 grid),
// interpolated to a dense field with cubic B-splines. The field is built here on the CPU (it is
// small) and applied on the GPU by F.warp (trilinear for the scan, nearest for the label).
// Voxel v of an axis with n voxels sits at u = v / (n - 1) * cells in the grid; with cell
// i = min(floor(u), cells - 1) and t = u - i its displacement is sum_k B_k(t) c[i + k], k = 0..3,
// B0 = (1-t)^3/6, B1 = (3t^3 - 6t^2 + 4)/6, B2 = (-3t^3 + 3t^2 + 3t + 1)/6, B3 = t^3/6.
// The B-spline weights are positive and sum to 1, so |field| never exceeds the largest control
// displacement, and linear control values give a linear field.

export interface DeformationOptions {
  /** B-spline cells per axis (default 2: the paper's 2x2x2 grid) */
  cells?: number;
  /** standard deviation of the control displacements in voxels (default 2); each is clipped at 3 sigma */
  sigma?: number;
}

/** The cubic B-spline weights of the four control points around position t in [0, 1]. */
export function bsplineWeights(t: number): [number, number, number, number] {
  const t2 = t * t;
  const t3 = t2 * t;
  return [(1 - t) ** 3 / 6, (3 * t3 - 6 * t2 + 4) / 6, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6, t3 / 6];
}

/**
 * The dense field [3, D, H, W] (displacements along D, H, W) of control displacements
 * `control` [3, cells+3, cells+3, cells+3].
 */
export function bsplineField(size: readonly [number, number, number], control: ArrayLike<number>, cells: number): Float32Array {
  const nc = cells + 3;
  if (control.length !== 3 * nc ** 3) throw new Error(`bsplineField: control must hold 3 x ${nc}^3 values for ${cells} cells, got ${control.length}`);
  // per axis and voxel: first control index and the four weights
  const axis = size.map((n) =>
    Array.from({ length: n }, (_, v) => {
      const u = n > 1 ? (v / (n - 1)) * cells : 0;
      const i = Math.min(Math.floor(u), cells - 1);
      return { i, w: bsplineWeights(u - i) };
    }),
  );
  const [D, H, W] = size;
  const vol = D * H * W;
  const out = new Float32Array(3 * vol);
  for (let z = 0; z < D; z++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const a = axis[0][z];
        const b = axis[1][y];
        const c = axis[2][x];
        const o = (z * H + y) * W + x;
        for (let comp = 0; comp < 3; comp++) {
          let s = 0;
          for (let p = 0; p < 4; p++)
            for (let q = 0; q < 4; q++) {
              const row = ((comp * nc + a.i + p) * nc + b.i + q) * nc + c.i;
              const wpq = a.w[p] * b.w[q];
              s += wpq * (c.w[0] * control[row] + c.w[1] * control[row + 1] + c.w[2] * control[row + 2] + c.w[3] * control[row + 3]);
            }
          out[comp * vol + o] = s;
        }
      }
  return out;
}

/** A random smooth field [3, D, H, W] in voxels: Gaussian control displacements, B-spline interpolated. */
export function randomDeformation(size: readonly [number, number, number], random: () => number, o: DeformationOptions = {}): Float32Array {
  const cells = o.cells ?? 2;
  const sigma = o.sigma ?? 2;
  if (!Number.isInteger(cells) || cells < 1) throw new Error(`randomDeformation: cells must be a positive integer, got ${cells}`);
  if (!(sigma >= 0)) throw new Error(`randomDeformation: sigma must be >= 0, got ${sigma}`);
  const control = new Float64Array(3 * (cells + 3) ** 3);
  for (let i = 0; i < control.length; i++) {
    // Box-Muller
    const g = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    control[i] = sigma * Math.max(-3, Math.min(3, g));
  }
  return bsplineField(size, control, cells);
}
