// The geometry every conv kernel reads, in 3d form (1d and 2d convs run as 3d with unit dims).
/** [D, H, W] */
export type V3 = [number, number, number];

/** Spatial sizes of the gathered input and of the output, kernel, stride, leading pad, dilation. */
export interface Geometry {
  inSize: V3;
  outSize: V3;
  k: V3;
  s: V3;
  p: V3;
  dil: V3;
}

export const vol = (v: readonly number[]): number => v[0] * v[1] * v[2];

/** A V3 as the vec4<u32> a kernel's uniform holds. */
export const v4 = (v: V3): number[] => [...v, 0];

/** Pads a per-axis list to 3 axes with leading `fill` values. */
export function to3(v: readonly number[], fill: number): V3 {
  const out: number[] = new Array<number>(3 - v.length).fill(fill).concat(v);
  return out as V3;
}
