// Float64 reference forward of TransUNet (docs/models/transunet.md section 2) composed of the
// reference ops: StdConv2d as weightStandardize + conv, group / layer / batch norm (norm.ts),
// max pool and conv (conv.ts), linear, attention, GELU, cat, pad (ops.ts, attention.ts) and
// bilinear align-corners upsampling (interpolate.ts). Parameters come as a state dict of Arr keyed
// by TransUNet's PyTorch names; batch norm uses the running statistics (eval), no dropout.
// Returns logits [N, numClasses, S, S].
import { Arr } from './ndarray.js';
import { conv, maxPool2d } from './conv.js';
import { batchNorm, groupNorm, layerNorm, weightStandardize } from './norm.js';
import { attention } from './attention.js';
import { interpolateRef } from './interpolate.js';
import { binary, cat, fns, linear, pad, permute, unary } from './ops.js';

export interface TransUNetRefConfig {
  blockUnits: readonly number[];
  gnGroups: number;
  numHeads: number;
  numLayers: number;
  nSkip: number;
}

const add = (a: Arr, b: Arr) => binary(a, b, (x, y) => x + y);
const relu = (a: Arr) => unary(a, fns.relu);

export function transunetRef(x: Arr, p: Map<string, Arr>, c: TransUNetRefConfig): Arr {
  const P = (k: string) => {
    const v = p.get(k);
    if (!v) throw new Error(`transunetRef: no parameter ${k}`);
    return v;
  };
  const stdConv = (h: Arr, k: string, stride: number, padding: number) => conv(h, weightStandardize(P(k), 1e-5), null, { stride: [stride, stride], padBefore: [padding, padding] });
  const gn = (h: Arr, k: string, G: number, eps: number) => groupNorm(h, G, P(`${k}.weight`), P(`${k}.bias`), eps);
  const H = 'transformer.embeddings.hybrid_model.';
  const [N, , S] = x.shape;
  // one channel repeated to three
  let h = x.shape[1] === 1 ? cat([x, x, x], 1) : x;

  // ResNetV2
  h = relu(gn(stdConv(h, `${H}root.conv.weight`, 2, 3), `${H}root.gn`, c.gnGroups, 1e-6));
  const features: Arr[] = [h];
  h = maxPool2d(h, { kernel: [3, 3], stride: [2, 2] });
  for (let b = 1; b <= 3; b++) {
    for (let u = 1; u <= c.blockUnits[b - 1]; u++) {
      const U = `${H}body.block${b}.unit${u}.`;
      const stride = u === 1 && b > 1 ? 2 : 1;
      const residual = p.has(`${U}downsample.weight`) ? gn(stdConv(h, `${U}downsample.weight`, stride, 0), `${U}gn_proj`, P(`${U}gn_proj.weight`).size, 1e-5) : h;
      let y = relu(gn(stdConv(h, `${U}conv1.weight`, 1, 0), `${U}gn1`, c.gnGroups, 1e-6));
      y = relu(gn(stdConv(y, `${U}conv2.weight`, stride, 1), `${U}gn2`, c.gnGroups, 1e-6));
      y = gn(stdConv(y, `${U}conv3.weight`, 1, 0), `${U}gn3`, c.gnGroups, 1e-6);
      h = relu(add(residual, y));
    }
    if (b < 3) {
      const right = Math.trunc(S / 4 / b);
      const short = right - h.shape[2];
      features.push(short ? pad(h, [0, short, 0, short]) : h);
    }
  }
  features.reverse();

  // patch embedding, tokens, position table
  const E = 'transformer.embeddings.';
  const map = conv(h, P(`${E}patch_embeddings.weight`), P(`${E}patch_embeddings.bias`));
  const [, D, g] = map.shape;
  let t = permute(map.reshape([N, D, g * g]), [0, 2, 1]);
  t = add(t, P(`${E}position_embeddings`));

  // ViT encoder
  const ln = (a: Arr, k: string) => layerNorm(a, 1, P(`${k}.weight`), P(`${k}.bias`), 1e-6);
  const lin = (a: Arr, k: string) => linear(a.reshape([a.size / a.shape[a.ndim - 1], a.shape[a.ndim - 1]]), P(`${k}.weight`), P(`${k}.bias`)).reshape([...a.shape.slice(0, -1), P(`${k}.weight`).shape[0]]);
  const T = g * g;
  const nh = c.numHeads;
  const dh = D / nh;
  const heads = (a: Arr) => permute(a.reshape([N, T, nh, dh]), [0, 2, 1, 3]);
  for (let i = 0; i < c.numLayers; i++) {
    const L = `transformer.encoder.layer.${i}.`;
    const a = ln(t, `${L}attention_norm`);
    const ctx = attention(heads(lin(a, `${L}attn.query`)), heads(lin(a, `${L}attn.key`)), heads(lin(a, `${L}attn.value`)), null, 1 / Math.sqrt(dh));
    t = add(t, lin(permute(ctx, [0, 2, 1, 3]).reshape([N, T, D]), `${L}attn.out`));
    const m = lin(unary(lin(ln(t, `${L}ffn_norm`), `${L}ffn.fc1`), fns.gelu), `${L}ffn.fc2`);
    t = add(t, m);
  }
  t = ln(t, 'transformer.encoder.encoder_norm');

  // decoder
  const convBnRelu = (a: Arr, k: string) => {
    const y = conv(a, P(`${k}.0.weight`), null, { padBefore: [1, 1] });
    return relu(batchNorm(y, P(`${k}.1.running_mean`), P(`${k}.1.running_var`), P(`${k}.1.weight`), P(`${k}.1.bias`), false, 1e-5));
  };
  let d = convBnRelu(permute(t, [0, 2, 1]).reshape([N, D, g, g]), 'decoder.conv_more');
  for (let k = 0; k < 4; k++) {
    d = interpolateRef(d, { size: [2 * d.shape[2], 2 * d.shape[3]], mode: 'linear', alignCorners: true });
    if (k < c.nSkip) d = cat([d, features[k]], 1);
    d = convBnRelu(convBnRelu(d, `decoder.blocks.${k}.conv1`), `decoder.blocks.${k}.conv2`);
  }
  return conv(d, P('segmentation_head.0.weight'), P('segmentation_head.0.bias'), { padBefore: [1, 1] });
}
