// The demo page's two trainings at their default settings, as a user runs them: the static build
// (`npm run demo:build`, dist-demo/) served by Vite's preview server on localhost, opened in
// headless Chromium through Playwright with the browser tests' flags (WebGPU on SwiftShader; the
// real GPU with MEDSEG_BROWSER_GPU=1). On the bundled spleen scan it clicks "Train V-Net here"
// (60 steps) and then "Train TransUNet here" (300 steps), waits for each to train and segment, and
// prints the time, the page's status and its Dice against the label, then the adapter panel;
// screenshots go to test-artifacts/demo-trainings/. Minutes on a CPU adapter; not part of npm test.
// Measured here (Chromium 156, SwiftShader, 2 cores, load 2-3): V-Net 159 s, Dice 0.868; TransUNet
// 130 s, Dice 0.929 (257 s and 173 s, the same Dice, with a benchmark alongside).
//   npm run demo:build && node scripts/demo-trainings.mjs
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { preview } from 'vite';
import { chromium } from 'playwright';
import { chromiumArgs, findChromium, probe } from './system.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
if (!existsSync(join(root, 'dist-demo/index.html'))) throw new Error('no dist-demo/: run npm run demo:build first');
const shots = join(root, 'test-artifacts/demo-trainings');
mkdirSync(shots, { recursive: true });

const server = await preview({ root: join(root, 'demo'), configFile: join(root, 'demo/vite.config.ts'), build: { outDir: join(root, 'dist-demo') }, preview: { port: 0, host: 'localhost' }, logLevel: 'warn' });
const url = server.resolvedUrls.local[0];
const found = findChromium(probe({ root }));
if (!found?.exists) throw new Error('no Chromium found (scripts/system.mjs findChromium): install Debian\'s chromium or set MEDSEG_CHROMIUM');
const browser = await chromium.launch({ executablePath: found.path, args: chromiumArgs(process.env.MEDSEG_BROWSER_GPU === '1'), headless: true });
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
  /** Clicks a training button and waits for its status element to say done. */
  const train = async (name, button, status) => {
    const t0 = Date.now();
    await page.locator(button).click();
    await page.waitForSelector(`${status}[data-state="done"]`, { timeout: 3_600_000 });
    console.log(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s: ${await page.locator(status).innerText()}`);
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };
  await train('vnet', '#train', '#train-status');
  console.log(`  Dice against the label: ${await page.locator('#dice').getAttribute('data-dice')}`);
  await train('transunet', '#transunet-train', '#transunet-status');
  console.log(`  ${await page.locator('#transunet-dice').innerText()}`);
  console.log(`screenshots in ${shots}`);
} finally {
  await browser.close();
  await server.close();
}
