// Peak GPU memory of the fused 4096-token attention (12 heads x 4096 x 64, MedSAM's global
// blocks): allocations happen when ops are encoded, so the pool's peak right after encoding is
// what the run needs. Prints MiB for inputs, forward and forward+backward. Needs `npm run build`.
//   node scripts/attention-memory.mjs
import { init, randn, memoryStats, F } from '../dist/index.js';

await init();
const mib = (b) => (b / 2 ** 20).toFixed(1);
const [B, H, L, D] = [1, 12, 4096, 64];
const q = randn([B, H, L, D], { requiresGrad: true });
const k = randn([B, H, L, D], { requiresGrad: true });
const v = randn([B, H, L, D], { requiresGrad: true });
const inputs = memoryStats().liveBytes;
const o = F.scaledDotProductAttention(q, k, v);
const fwd = memoryStats().peakBytes - inputs;
o.sum().backward();
const both = memoryStats().peakBytes - inputs;
console.log(JSON.stringify({ shape: [B, H, L, D], inputsMiB: mib(inputs), forwardExtraMiB: mib(fwd), forwardBackwardExtraMiB: mib(both), scoreMatrixMiB: mib(H * L * L * 4) }));
process.exit(0); // the work was only encoded; nothing needs to run
