// The full-size TransUNet (R50-ViT-B_16, random weights) in headless Chromium: a page bundled from
// the built package (dist/; run `node scripts/build.mjs` first) is served on localhost and opened
// through Playwright with the browser tests' flags (WebGPU on SwiftShader; the real GPU with
// MEDSEG_BROWSER_GPU=1). The page builds the model, runs the forward (eval mode, no gradients) once
// cold (pipelines compiled) and --runs more times warm, each timed to the read-back of its logits,
// optionally one training-mode forward+backward (--backward: mean(logits).backward(), gradients
// to every parameter), and prints each time with memoryStats()'s peak GPU bytes (the buffer
// pool's most live bytes: weights, activations and, for the backward, gradients).
// Takes minutes on a CPU adapter; not part of npm test. Measured here (Chromium 156, SwiftShader,
// 2 cores shared at load average 10-20): forward cold 699 s, warm 636 s, peak 487.1 MiB of which
// 442.5 MiB are the weights and input (llvmpipe in Node: 21 s warm, the same 487 MiB).
//   node scripts/transunet-chromium.mjs [--size 224] [--classes 9] [--runs 1] [--backward] [--config R50-ViT-B_16|tiny]
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromiumArgs, findChromium, probe } from './system.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
};
const options = {
  config: arg('--config', 'R50-ViT-B_16'),
  imgSize: Number(arg('--size', 224)),
  numClasses: Number(arg('--classes', 9)),
  runs: Number(arg('--runs', 1)),
  backward: process.argv.includes('--backward'),
};
if (!(Number.isInteger(options.imgSize) && options.imgSize > 0 && options.imgSize % 16 === 0)) throw new Error(`--size must be a positive multiple of 16, got ${options.imgSize}`);
if (!(Number.isInteger(options.numClasses) && options.numClasses > 0)) throw new Error(`--classes must be a positive integer, got ${options.numClasses}`);
if (!(Number.isInteger(options.runs) && options.runs >= 0)) throw new Error(`--runs must be a whole number, got ${options.runs}`);
if (!existsSync(join(root, 'dist/index.js'))) throw new Error('dist/index.js not found: run `node scripts/build.mjs` first');

// ---- the page: runs in Chromium, logs through console.log
const page = `
import { init, manualSeed, memoryStats, models, noGrad, rand, resetPeakMemory, scope } from './dist/index.js';
const MiB = 2 ** 20;
const mib = (b) => (b / MiB).toFixed(1);
globalThis.runTransUNet = async (o) => {
  const rt = await init();
  console.log('adapter: ' + rt.adapterName);
  manualSeed(0);
  const t0 = performance.now();
  const net = new models.TransUNet({ config: o.config, imgSize: o.imgSize, numClasses: o.numClasses, nSkip: 3 });
  const x = rand([1, 1, o.imgSize, o.imgSize]);
  await rt.sync();
  const params = [...net.parameters()].reduce((n, p) => n + p.size, 0);
  const base = memoryStats().liveBytes;
  console.log('TransUNet ' + o.config + ' at ' + o.imgSize + 'x' + o.imgSize + ', ' + o.numClasses + ' classes: ' + params + ' parameters, built in ' + ((performance.now() - t0) / 1000).toFixed(1) + ' s, ' + mib(base) + ' MiB live (weights and input)');
  const rows = [];
  const timed = async (pass, run) => {
    resetPeakMemory();
    const t = performance.now();
    await run();
    const seconds = (performance.now() - t) / 1000;
    const row = { pass, seconds, peakMiB: memoryStats().peakBytes / MiB, liveMiB: memoryStats().liveBytes / MiB };
    rows.push(row);
    console.log(pass + ': ' + seconds.toFixed(1) + ' s, peak ' + row.peakMiB.toFixed(1) + ' MiB (base ' + mib(base) + ' MiB)');
    return row;
  };
  const forward = async () => {
    net.eval();
    const y = scope(() => noGrad(() => net.forward(x)));
    const v = await y.read();
    y.dispose();
    if (v.length !== o.numClasses * o.imgSize * o.imgSize || !v.every(Number.isFinite)) throw new Error('forward: ' + v.length + ' logits, not all finite');
  };
  await timed('forward (cold)', forward);
  for (let i = 0; i < o.runs; i++) await timed('forward (warm ' + (i + 1) + ')', forward);
  if (o.backward) {
    await timed('forward+backward (cold)', async () => {
      net.train();
      const loss = scope(() => net.forward(x).mean());
      loss.backward();
      loss.dispose();
      let norm = 0;
      for (const p of net.parameters()) {
        if (!p.grad) throw new Error('backward: a parameter has no gradient');
        norm += (await p.grad.mul(p.grad).sum().read())[0];
        p.grad.dispose();
        p.grad = null;
      }
      if (!Number.isFinite(norm)) throw new Error('backward: gradient norm ' + norm);
    });
  }
  x.dispose();
  net.dispose();
  return { adapter: rt.adapterName, params, baseMiB: base / MiB, rows };
};
globalThis.pageReady = true;
`;

// bundled with esbuild (dist's bare imports resolved from node_modules; Dawn's 'webgpu' stays out)
const esbuild = await import('esbuild');
const built = await esbuild.build({ stdin: { contents: page, resolveDir: root, loader: 'js' }, bundle: true, write: false, format: 'esm', platform: 'browser', target: 'es2022', external: ['webgpu'], logLevel: 'warning' });
const bundled = built.outputFiles[0].text;

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wgsl': 'text/plain', '.json': 'application/json', '.map': 'application/json' };
const html = '<!doctype html><meta charset="utf-8"><title>TransUNet in Chromium</title><script type="module" src="/page.js"></script>';
const server = createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  if (path === '/') return void res.writeHead(200, { 'Content-Type': 'text/html' }).end(html);
  if (path === '/page.js') return void res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(bundled);
  const file = normalize(join(root, path));
  if (!file.startsWith(root)) return void res.writeHead(403).end();
  let body;
  try {
    body = await readFile(file);
  } catch {
    return void res.writeHead(404).end();
  }
  res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

const { chromium } = await import('playwright');
const realGpu = process.env.MEDSEG_BROWSER_GPU === '1';
const executablePath = findChromium(probe())?.path ?? '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: chromiumArgs(realGpu), headless: true });
const t0 = Date.now();
const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s]`;
try {
  const p = await browser.newPage();
  p.on('console', (m) => console.log(`${stamp()} ${m.text()}`));
  p.on('pageerror', (e) => console.log(`${stamp()} page error: ${e.message}`));
  await p.goto(url);
  await p.waitForFunction(() => 'pageReady' in globalThis, null, { timeout: 120_000 });
  console.log(`${stamp()} Chromium ${browser.version()} (${realGpu ? 'real GPU' : 'SwiftShader'}), ${JSON.stringify(options)}`);
  const r = await p.evaluate((o) => globalThis.runTransUNet(o), options);
  console.log(JSON.stringify({ chromium: browser.version(), ...options, ...r }));
} finally {
  await browser.close();
  server.close();
}
