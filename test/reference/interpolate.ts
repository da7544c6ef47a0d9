// Float64 reference for F.interpolate (nearest / bilinear / trilinear), from PyTorch's definitions:
// per spatial dim, a source coordinate from the output index; nearest takes floor (with PyTorch's
// f32 scale and its out == in / out == 2*in shortcuts), the linear modes weight the two
// neighbours. The N-d result is the tensor product of the per-dim 1-D weights.
import { Arr, size } from './ndarray.js';

export interface InterpRef {
  size?: number[];
  scaleFactor?: number[];
  mode: 'nearest' | 'linear';
  alignCorners?: boolean;
}

/** Per-dim list of (input index, weight) taps of each output index. */
function taps1d(nIn: number, nOut: number, sf: number | undefined, mode: 'nearest' | 'linear', align: boolean): [number, number][][] {
  const out: [number, number][][] = [];
  for (let o = 0; o < nOut; o++) {
    if (mode === 'nearest') {
      let i: number;
      if (nOut === nIn) i = o;
      else if (nOut === 2 * nIn) i = o >> 1;
      else {
        const scale = Math.fround(sf !== undefined ? 1 / sf : nIn / nOut);
        i = Math.min(Math.floor(Math.fround(o * scale)), nIn - 1);
      }
      out.push([[i, 1]]);
      continue;
    }
    let s: number;
    if (align) s = nOut > 1 ? (o * (nIn - 1)) / (nOut - 1) : 0;
    else s = Math.max((o + 0.5) * (sf !== undefined ? 1 / sf : nIn / nOut) - 0.5, 0);
    const i0 = Math.min(Math.floor(s), nIn - 1);
    const i1 = Math.min(i0 + 1, nIn - 1);
    const l = s - i0;
    out.push([
      [i0, 1 - l],
      [i1, l],
    ]);
  }
  return out;
}

export function interpolateRef(x: Arr, o: InterpRef): Arr {
  const k = x.ndim - 2;
  const inS = x.shape.slice(2);
  const outS = o.size ?? inS.map((n, i) => Math.floor(n * o.scaleFactor![i]));
  const taps = inS.map((n, i) => taps1d(n, outS[i], o.scaleFactor?.[i], o.mode, o.alignCorners ?? false));
  const planes = x.shape[0] * x.shape[1];
  const inPlane = size(inS);
  const outPlane = size(outS);
  const out = Arr.zeros([x.shape[0], x.shape[1], ...outS]);
  for (let p = 0; p < planes; p++) {
    for (let f = 0; f < outPlane; f++) {
      // output multi-index
      const idx: number[] = [];
      let r = f;
      for (let d = k - 1; d >= 0; d--) {
        idx[d] = r % outS[d];
        r = Math.floor(r / outS[d]);
      }
      let acc = 0;
      const rec = (d: number, flat: number, w: number) => {
        if (d === k) {
          acc += w * x.data[p * inPlane + flat];
          return;
        }
        for (const [i, wi] of taps[d][idx[d]]) rec(d + 1, flat * inS[d] + i, w * wi);
      };
      rec(0, 0, 1);
      out.data[p * outPlane + f] = acc;
    }
  }
  return out;
}
