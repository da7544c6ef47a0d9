// The full-size V-Net forward (issue 6, item 6), outside `npm test`: the `paper` preset
// (vnet.pytorch, 16 base channels, PReLU, batch-statistics batch norm) on one 1 x 1 x 64 x 128 x 128
// volume (D x H x W, the paper's 128 x 128 x 64), randomly initialised, without gradients. Prints the
// adapter, the wall time of a first run (with kernel compiles) and of a second, the FLOPs of its
// convolutions (2 per multiply-add), the rate, and the pool's peak GPU memory. Needs `npm run build`.
//   MEDSEG_ADAPTER=llvmpipe node scripts/vnet-paper-forward.mjs [D H W] [--save out.f32] [--compare other.f32]
// --save writes the output (float32, little-endian); --compare prints the largest difference from
// a saved output (the same seed gives the same weights and input on every adapter), e.g. llvmpipe
// against SwiftShader.
import { readFileSync, writeFileSync } from 'node:fs';
import { init, runtime, models, randn, noGrad, memoryStats, manualSeed } from '../dist/index.js';

const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(name);
  return i < 0 ? null : args.splice(i, 2)[1];
};
const savePath = flag('--save');
const comparePath = flag('--compare');
const [D, H, W] = args.length >= 3 ? args.slice(0, 3).map(Number) : [64, 128, 128];
await init();
const rt = runtime();
manualSeed(1);
const net = new models.VNet({ preset: 'paper' });
net.eval();
const c = net.config.baseChannels;

// Multiply-adds per input voxel V = D*H*W of each conv (vnet.pytorch's topology, docs/models/vnet.md).
function convMacs() {
  const V = D * H * W;
  let m = 0;
  const conv = (cin, cout, k, vox) => (m += cin * cout * k ** 3 * vox);
  conv(1, c, 5, V); // in_tr
  const convs = [1, 2, 3, 2];
  for (let l = 0; l < 4; l++) {
    const cin = c << l;
    const vox = V / 8 ** (l + 1);
    conv(cin, 2 * cin, 2, vox); // down conv
    for (let i = 0; i < convs[l]; i++) conv(2 * cin, 2 * cin, 5, vox);
  }
  // up_tr256..32: input channels 16c, 16c, 8c, 4c; up conv to half the output channels (8c, 4c,
  // 2c, c), concatenated with the skip to the output channels, which the convs keep
  const upIn = [16 * c, 16 * c, 8 * c, 4 * c];
  const upConvs = [2, 2, 1, 1];
  for (let l = 0; l < 4; l++) {
    const out = (16 * c) >> l;
    const vox = V / 8 ** (3 - l);
    conv(upIn[l], out / 2, 2, vox / 8); // transposed: every input voxel meets 8 taps
    for (let i = 0; i < upConvs[l]; i++) conv(out, out, 5, vox);
  }
  conv(2 * c, 2, 5, V); // out_tr
  conv(2, 2, 1, V);
  return m;
}

const x = randn([1, 1, D, H, W]);
const flops = 2 * convMacs();
const before = memoryStats().liveBytes;
const runs = [];
let output = null;
for (let r = 0; r < 2; r++) {
  const t = performance.now();
  const y = noGrad(() => net.forward(x));
  await rt.sync();
  runs.push((performance.now() - t) / 1000);
  const v = await y.read();
  if (!v.every(Number.isFinite)) throw new Error('the forward produced non-finite values');
  output = v;
  y.dispose();
  console.error(`run ${r + 1}: ${runs[r].toFixed(1)} s`);
}
if (savePath) writeFileSync(savePath, Buffer.from(output.buffer, output.byteOffset, output.byteLength));
let comparison = {};
if (comparePath) {
  const buf = readFileSync(comparePath);
  const other = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (other.length !== output.length) throw new Error(`${comparePath} holds ${other.length} values, this output ${output.length}`);
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < output.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(output[i] - other[i]));
    scale = Math.max(scale, Math.abs(other[i]));
  }
  comparison = { comparedWith: comparePath, maxAbsDifference: maxAbs, largestValue: scale };
}
const mib = (b) => +(b / 2 ** 20).toFixed(1);
console.log(
  JSON.stringify({
    adapter: rt.adapterName,
    input: [1, 1, D, H, W],
    convGFLOP: +(flops / 1e9).toFixed(1),
    firstRunSeconds: +runs[0].toFixed(1),
    secondRunSeconds: +runs[1].toFixed(1),
    gflopPerSecond: +(flops / 1e9 / runs[1]).toFixed(2),
    peakGpuMiB: mib(memoryStats().peakBytes),
    weightsAndInputMiB: mib(before),
    ...comparison,
  }),
);
process.exit(0);
