// Float64 reference forward of V-Net (docs/models/vnet.md section 3) composed of the reference ops:
// conv / convTranspose (conv.ts), batch norm (norm.ts), elementwise, cat and the activations (ops.ts).
// Parameters come as a state dict of Arr keyed by the PyTorch names of either variant; the input
// transition adds the input to every output channel (channel c gets input channel c mod Cin).
// Batch norm uses batch statistics ('batch') or the state dict's running statistics ('running').
// No dropout (the reference is the deterministic network). Returns logits [N, outChannels, D, H, W].
import { Arr } from './ndarray.js';
import { conv, convTranspose } from './conv.js';
import { batchNorm } from './norm.js';
import { binary, cat, fns, unary } from './ops.js';

export interface VNetRefConfig {
  variant: 'vnet.pytorch' | 'monai';
  act: 'prelu' | 'elu';
  baseChannels: number;
  inChannels: number;
  outChannels: number;
  bn: 'batch' | 'running';
}

export function vnetRef(x: Arr, p: Map<string, Arr>, c: VNetRefConfig): Arr {
  const monai = c.variant === 'monai';
  const get = (k: string): Arr => {
    const v = p.get(k);
    if (!v) throw new Error(`vnetRef: no parameter ${k}`);
    return v;
  };
  const opt = (k: string): Arr | null => p.get(k) ?? null;
  const bnAt = (t: Arr, k: string) => batchNorm(t, opt(`${k}.running_mean`), opt(`${k}.running_var`), get(`${k}.weight`), get(`${k}.bias`), c.bn === 'batch');
  const act = (t: Arr, k: string): Arr => {
    if (c.act === 'elu') return unary(t, fns.elu(1));
    const a = get(`${k}.weight`);
    const [, C] = t.shape;
    const S = t.size / (t.shape[0] * C);
    return t.map((v, i) => fns.prelu(v, a.data[Math.floor(i / S) % C]));
  };
  const add = (a: Arr, b: Arr) => binary(a, b, (u, v) => u + v);
  const conv5 = (t: Arr, k: string) => conv(t, get(`${k}.weight`), opt(`${k}.bias`), { padBefore: [2, 2, 2] });
  /** bn(conv5(t)) with the variant's names, under prefix `k` */
  const convBn = (t: Arr, k: string) => (monai ? bnAt(conv5(t, `${k}.conv_block.conv`), `${k}.conv_block.adn.N`) : bnAt(conv5(t, `${k}.conv1`), `${k}.bn1`));
  const luAct = (k: string) => (monai ? `${k}.act_function` : `${k}.relu1`);
  const act12 = (k: string, i: 1 | 2) => (monai ? `${k}.act_function${i}` : `${k}.relu${i}`);
  const ops = (t: Arr, k: string, n: number) => {
    let h = t;
    for (let i = 0; i < n; i++) h = act(convBn(h, `${k}.ops.${i}`), luAct(`${k}.ops.${i}`));
    return h;
  };

  // in_tr
  const [N, Cin, D, H, W] = x.shape;
  const S = D * H * W;
  const B = c.baseChannels;
  const xRep = Arr.zeros([N, B, D, H, W]);
  for (let n = 0; n < N; n++) for (let ch = 0; ch < B; ch++) for (let s = 0; s < S; s++) xRep.data[(n * B + ch) * S + s] = x.data[(n * Cin + (ch % Cin)) * S + s];
  const out16 = act(add(convBn(x, 'in_tr'), xRep), monai ? 'in_tr.act_function' : 'in_tr.relu1');

  const down = (t: Arr, k: string, n: number) => {
    const dc = conv(t, get(`${k}.down_conv.weight`), opt(`${k}.down_conv.bias`), { stride: [2, 2, 2] });
    const d = act(bnAt(dc, `${k}.bn1`), act12(k, 1));
    return act(add(ops(d, k, n), d), act12(k, 2));
  };
  const up = (t: Arr, skip: Arr, k: string, n: number) => {
    const u = convTranspose(t, get(`${k}.up_conv.weight`), get(`${k}.up_conv.bias`), { stride: [2, 2, 2] });
    const xcat = cat([act(bnAt(u, `${k}.bn1`), act12(k, 1)), skip], 1);
    return act(add(ops(xcat, k, n), xcat), act12(k, 2));
  };
  const out32 = down(out16, 'down_tr32', 1);
  const out64 = down(out32, 'down_tr64', 2);
  const out128 = down(out64, 'down_tr128', 3);
  const out256 = down(out128, 'down_tr256', 2);
  let h = up(out256, out128, 'up_tr256', 2);
  h = up(h, out64, 'up_tr128', 2);
  h = up(h, out32, 'up_tr64', 1);
  h = up(h, out16, 'up_tr32', 1);
  h = act(convBn(h, 'out_tr'), monai ? 'out_tr.act_function1' : 'out_tr.relu1');
  return conv(h, get('out_tr.conv2.weight'), get('out_tr.conv2.bias'), {});
}
