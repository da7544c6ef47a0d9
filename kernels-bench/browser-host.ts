// The Node side of the benchmark's browser runs (--browser, --compare): bundles a page entry with
// esbuild (medseg from dist/, TensorFlow.js; ONNX Runtime Web stays external and loads from
// node_modules through an import map), serves the repository over localhost with cross-origin
// isolation, and opens the page in Chromium through Playwright with scripts/system.mjs's flags
// (SwiftShader's WebGPU, or the real GPU with MEDSEG_BROWSER_GPU=1), forwarding its console.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright';

export const root = fileURLToPath(new URL('../', import.meta.url));

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.json': 'application/json' };

export async function bundle(entry: string, out: string): Promise<void> {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: out,
    external: ['onnxruntime-web', 'onnxruntime-web/webgpu', 'webgpu'],
    logLevel: 'warning',
  });
}

function serve(page: string): Promise<{ server: Server; url: string }> {
  const html = `<!doctype html><meta charset="utf-8"><title>medseg bench</title>
<script type="importmap">{"imports":{"onnxruntime-web":"/node_modules/onnxruntime-web/dist/ort.min.mjs","onnxruntime-web/webgpu":"/node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs"}}</script>
<script type="module" src="/${page}"></script>`;
  const server = createServer(async (req, res) => {
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path === '/') {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(html);
      return;
    }
    const file = normalize(join(root, path));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404, headers).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` })));
}

/** Serves and opens `page` (a path under the repository), waiting until it defines globalThis[ready]. */
export async function openPage(page: string, ready: string, log: (s: string) => void): Promise<{ browser: Browser; page: Page; close: () => Promise<void> }> {
  const sys = (await import(pathToFileURL(join(root, 'scripts/system.mjs')).href)) as {
    chromiumArgs(realGpu?: boolean): string[];
    findChromium(f: unknown): { path: string } | null;
    probe(o?: unknown): unknown;
  };
  const { chromium } = await import('playwright');
  const { server, url } = await serve(page);
  const realGpu = process.env.MEDSEG_BROWSER_GPU === '1';
  const browser = await chromium.launch({ executablePath: sys.findChromium(sys.probe())?.path ?? '/usr/bin/chromium', args: sys.chromiumArgs(realGpu), headless: true });
  const p = await browser.newPage();
  p.on('console', (m) => log(`  [browser] ${m.text()}`));
  p.on('pageerror', (e) => log(`  [browser error] ${e.message}`));
  await p.goto(url);
  await p.waitForFunction((name) => name in globalThis, ready, { timeout: 120_000 });
  return {
    browser,
    page: p,
    close: async () => {
      await browser.close();
      server.close();
    },
  };
}
