// --browser: runs the suite (browser/page.ts) in Chromium through Playwright on its WebGPU adapter
// (SwiftShader here; MEDSEG_BROWSER_GPU=1 launches it on the real GPU with Vulkan), writing the same
// JSON, Markdown and SVG files from the Node side as the page sends them.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bundle, openPage, root } from '../browser-host.js';
import type { SuiteOptions } from '../suite.js';

export async function runSuiteInBrowser(o: Omit<SuiteOptions, 'io' | 'log'>, log: (s: string) => void = (s) => console.log(s)): Promise<void> {
  const pageFile = 'dist-bench/suite-page.js';
  await bundle(join(root, 'kernels-bench/browser/page.ts'), join(root, pageFile));
  const { page, close } = await openPage(pageFile, 'runSuiteInPage', (s) => log(s.replace(/^ {2}\[browser\] /, '')));
  // the page writes after every row without waiting: the writes are queued so each lands whole, in order
  let writes = Promise.resolve();
  try {
    await page.exposeFunction('benchWrite', (path: string, text: string) => {
      writes = writes.then(async () => {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(`${path}.partial`, text);
        await rename(`${path}.partial`, path);
      });
      return writes;
    });
    await page.evaluate((opts) => (globalThis as unknown as { runSuiteInPage: (o: unknown) => Promise<unknown> }).runSuiteInPage(opts), o);
    await writes;
  } finally {
    await close();
  }
}
