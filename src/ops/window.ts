// SAM's window_partition / window_unpartition (segment-anything image_encoder.py) for channels-last
// images: zero-pad [B, H, W, C] at the bottom and right to multiples of the window size, cut it into
// [B * nh * nw, ws, ws, C] windows (window index b*nh*nw + row*nw + col, tokens row-major inside a
// window), and back, cropping the padding. The padded tokens are zeros and are not masked. One
// gather pass each way (shaders/window.wgsl); each op's backward is the other one.
import { record } from '../autograd.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor, shapeStr } from '../tensor.js';

function launch(entry: 'partition' | 'unpartition', x: Tensor, outShape: number[], B: number, H: number, W: number, C: number, ws: number, context: string): Tensor {
  const out = Tensor.empty(outShape, context);
  const n = out.size;
  if (n === 0) return out;
  runtime().dispatch({
    kernel: 'window',
    entry: `window_${entry}`,
    params: { n, B, H, W, C, ws, nh: Math.ceil(H / ws), nw: Math.ceil(W / ws), strides: [...x.strides], offset: x.offset },
    buffers: { x: x.buffer, out: out.buffer },
    workgroups: Math.ceil(n / 256),
    context,
  });
  return out;
}

/** x [B, H, W, C] -> windows [B * ceil(H/ws) * ceil(W/ws), ws, ws, C], zero-padded. Returns the padded size too, as SAM. */
export function windowPartition(x: Tensor, windowSize: number): { windows: Tensor; padHW: [number, number] } {
  if (x.ndim !== 4) throw new Error(`windowPartition: x must be [B, H, W, C], got ${shapeStr(x.shape)}`);
  if (!Number.isInteger(windowSize) || windowSize < 1) throw new Error(`windowPartition: window size ${windowSize} must be a positive integer`);
  const [B, H, W, C] = x.shape;
  const ws = windowSize;
  const nh = Math.ceil(H / ws);
  const nw = Math.ceil(W / ws);
  const name = `windowPartition(${shapeStr(x.shape)}, ${ws})`;
  const windows = launch('partition', x, [B * nh * nw, ws, ws, C], B, H, W, C, ws, name);
  record('windowPartition', windows, [x], (g) => [launch('unpartition', g, [B, H, W, C], B, H, W, C, ws, `${name} backward`)]);
  return { windows, padHW: [nh * ws, nw * ws] };
}

/** windows [B * nh * nw, ws, ws, C] -> [B, H, W, C], cropping the padding (SAM's window_unpartition). */
export function windowUnpartition(windows: Tensor, windowSize: number, padHW: [number, number], hw: [number, number]): Tensor {
  const ws = windowSize;
  const [Hp, Wp] = padHW;
  const [H, W] = hw;
  const nh = Hp / ws;
  const nw = Wp / ws;
  const name = `windowUnpartition(${shapeStr(windows.shape)}, ${ws}, [${padHW}], [${hw}])`;
  if (windows.ndim !== 4 || windows.shape[1] !== ws || windows.shape[2] !== ws) throw new Error(`${name}: windows must be [N, ${ws}, ${ws}, C]`);
  if (!Number.isInteger(nh) || !Number.isInteger(nw) || nh !== Math.ceil(H / ws) || nw !== Math.ceil(W / ws)) {
    throw new Error(`${name}: padded size must be [H, W] rounded up to multiples of ${ws}`);
  }
  if (windows.shape[0] % (nh * nw) !== 0) throw new Error(`${name}: ${windows.shape[0]} windows are not a multiple of ${nh} x ${nw}`);
  const B = windows.shape[0] / (nh * nw);
  const C = windows.shape[3];
  const out = launch('unpartition', windows, [B, H, W, C], B, H, W, C, ws, name);
  return record('windowUnpartition', out, [windows], (g) => [launch('partition', g, [B * nh * nw, ws, ws, C], B, H, W, C, ws, `${name} backward`)]);
}
