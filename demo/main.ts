// Browser entry (served by Vite): opens WebGPU through medseg, runs a 256x256 matmul on the GPU
// and checks it against a CPU product. The segmentation demo builds on this page.
import { init, randn } from '../src/index.js';

const out = document.getElementById('out')!;
const log = (line: string) => (out.textContent = `${out.textContent === 'starting…' ? '' : out.textContent}${line}\n`);

async function main() {
  const rt = await init();
  log(`adapter: ${rt.adapterName}`);
  log(`features: ${[...rt.features].join(', ') || 'none'}`);
  const n = 256;
  const a = randn([n, n], { seed: 1 });
  const b = randn([n, n], { seed: 2 });
  const t0 = performance.now();
  const c = await a.matmul(b).read();
  const ms = performance.now() - t0;
  const [av, bv] = await Promise.all([a.read(), b.read()]);
  let err = 0;
  for (let i = 0; i < n; i += 17)
    for (let j = 0; j < n; j += 13) {
      let s = 0;
      for (let k = 0; k < n; k++) s += av[i * n + k] * bv[k * n + j];
      err = Math.max(err, Math.abs(s - c[i * n + j]));
    }
  log(`matmul ${n}^3: ${ms.toFixed(1)} ms (first run, compile included), max |error| ${err.toExponential(2)}`);
}

main().catch((e) => log(`error: ${e instanceof Error ? e.message : String(e)}`));
