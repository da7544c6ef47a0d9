// The demo end to end in Chromium (Debian's, WebGPU on SwiftShader unless MEDSEG_BROWSER_GPU=1):
// the demo is built with Vite into a temporary folder and served under a sub-path by a plain static
// server, so every check also checks that the built folder works there. Checked from the page's
// pixels and files: the bundled scan renders with the label's colour where the label is (and none
// without the label); scrolling changes the slice; the cursor's world position is the affine's;
// zoom at the pointer, pan and reset; window presets; an invalid file gives an error in the page;
// training steps of the tiny V-Net (stop, resume) draw the chart and a prediction overlay, and the
// page's Dice equals the Dice of the exported mask against the label; exported NIfTI masks read back
// with the scan's affine; tiny MedSAM gives a mask for a box (later boxes and points without the
// encoder), fine-tuned in the page it segments the spleen, and propagation reaches the neighbouring
// slices; TransUNet's ImageNet-21k .npz loads as the encoder to fine-tune from (nothing to segment
// with), a trained .pth (2 classes) segments the scan slice by slice to the labels
// segmentVolumeSlices gives in Node, drawn in each class's colour with a legend; "Train
// TransUNet here" trains tiny TransUNet on the scan's axial slices from random weights (stop, resume)
// and from that encoder, each first step's loss Node's, its chart drawn, the scan segmented to a
// class overlay with the Dice of the exported labels, and saved as safetensors it reads back (keys,
// shapes and metadata of that model; the CLI's reader takes it) and, loaded again, segments to the
// same Dice; dropped checkpoints are converted, cached in OPFS and loaded from the cache after a
// reload (MedSAM's .pth, that saved TransUNet, the encoder); a dropped PNG
// opens upright; no request leaves the served prefix on localhost; a browser without WebGPU (or
// without an adapter) gets the no-WebGPU notice. Reliability in the page: a real out-of-memory
// refusal (a maxBufferSize buffer, which SwiftShader's driver refuses) is shown with its op and bytes
// and the next segmentation works; the worker's live GPU memory stays exactly at its baseline across
// repeated segmentations, and from the V-Net weights load's own segmentation on that baseline is the
// loaded V-Net alone (the trained one it replaced freed at once, its gradients too) (kernel timing
// on: the panel's top kernels are real shaders/ entry points);
// a TransUNet segmentation run between two V-Net training steps gives Node's labels, and that
// training gives, bit for bit, the weights of the first, undisturbed run. Screenshots of each state:
// test-artifacts/demo/.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'vite';
import { chromium, type Browser, type Page } from 'playwright';
import { chromiumArgs, findChromium, probe } from '../../scripts/system.mjs';
import { readNifti } from '../../src/io/nifti.js';
import { init, manualSeed, models, tensor, weights } from '../../src/index.js';
import { classColour } from '../../demo/slices.js';
import { bucketSize } from '../../src/gpu/buffer-pool.js';
import { readTransUNetWeights } from '../../src/cli/transunet-weights.js';
import { serveFolder, type StaticServer } from './static-server.js';

const ROOT = join(__dirname, '../..');
const ARTIFACTS = join(ROOT, 'test-artifacts/demo');
const PREFIX = '/some/sub/path/';
const NPZ = join(ROOT, 'test/fixtures/transunet_tiny_in21k.npz');
const scanFile = readNifti(readFileSync(join(ROOT, 'data/ct_spleen_msd09_crop.nii.gz')));
const labelFile = readNifti(readFileSync(join(ROOT, 'data/ct_spleen_msd09_crop_label.nii.gz')));

let outDir = '';
let server: StaticServer;
let browser: Browser;
let page: Page;
const pageRequests: string[] = [];
/** the V-Net the page trained from random weights (3 steps, with a stop and resume), as the page saved it, and its Dice */
let trainedVNet: Buffer | null = null;
let trainedDice: string | null = null;
/** the worker's live GPU memory at the start, before any model exists */
let startMemory: { liveBytes: number; liveTensors: number } | null = null;
/** what the segmentation of the V-Net weights load reported, and the file's tensors (name, shape) */
let afterLoad: { liveBytes: number; liveTensors: number } | null = null;
let loadedTensors: number[][] = [];
const consoleErrors: string[] = [];

interface Pixels {
  nonBlack: number;
  green: number;
  red: number;
  blue: number;
  hash: number;
}

/** Colour counts of a canvas: overlay colours are where one channel leads the others by 40. */
function pixels(id: string): Promise<Pixels> {
  return page.evaluate((id) => {
    const c = document.getElementById(id) as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let nonBlack = 0;
    let green = 0;
    let red = 0;
    let blue = 0;
    let hash = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
      if (r + g + b > 30) nonBlack++;
      if (g > r + 40 && g > b + 40) green++;
      if (r > g + 40 && r > b + 40) red++;
      if (b > r + 40 && b > g + 40) blue++;
      hash = (hash * 31 + r + 7 * g + 13 * b) | 0;
    }
    return { nonBlack, green, red, blue, hash };
  }, id);
}

/** The axial canvas's box in the viewport, scrolled into view first (a reload keeps the scroll position). */
async function axialBox(): Promise<{ x: number; y: number; width: number; height: number }> {
  await page.locator('#view-axial').scrollIntoViewIfNeeded();
  return (await page.locator('#view-axial').boundingBox())!;
}

/** Waits for MedSAM run number `n` (the page counts them) to finish. */
async function medsamRun(n: number): Promise<string> {
  await page.waitForSelector(`#medsam-status[data-runs="${n}"][data-state="done"]`, { timeout: 90_000 });
  return page.locator('#medsam-status').innerText();
}

/** The tensors of a safetensors file, by name: their raw bytes (the header read by the repo's safetensors reader). */
async function safetensorsTensors(bytes: Buffer): Promise<Map<string, Buffer>> {
  const file = await weights.readSafetensors(bytes);
  return new Map(file.tensors.map((t) => [t.name, bytes.subarray(t.begin, t.end)]));
}

/** The worker's memoryStats, read through the page's console handle. */
const workerMemory = () => page.evaluate(() => (window as unknown as { medsegDebug: { memory(): Promise<{ liveBytes: number; liveTensors: number }> } }).medsegDebug.memory());

const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  rmSync(ARTIFACTS, { recursive: true, force: true }); // this run's screenshots only
  mkdirSync(ARTIFACTS, { recursive: true });
  outDir = mkdtempSync(join(tmpdir(), 'medseg-demo-'));
  await build({ root: join(ROOT, 'demo'), configFile: join(ROOT, 'demo/vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  server = await serveFolder(outDir, PREFIX);
  const found = findChromium(probe({ root: ROOT }));
  expect(found?.exists, 'a Chromium to run the demo in (scripts/system.mjs findChromium)').toBe(true);
  browser = await chromium.launch({ executablePath: found!.path, args: chromiumArgs(process.env.MEDSEG_BROWSER_GPU === '1'), headless: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.on('request', (r) => pageRequests.push(r.url()));
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe('demo page (built, served under a sub-path)', () => {
  it('opens the bundled scan with its label: the views are drawn and the label colour is where the label is', async () => {
    expect(await page.locator('#errors li').count(), await page.locator('#errors').innerText()).toBe(0);
    await expect.poll(() => page.locator('#adapter').getAttribute('data-adapter')).toBeTruthy();
    startMemory = await workerMemory();
    expect(await page.locator('#scan-name').innerText()).toContain('164x166x26');
    // the case card: the affine's axis codes and the label's volume (96672 voxels of 0.795 x 0.795 x 5 mm)
    const card = await page.locator('#info').innerText();
    expect(card).toContain('axes RAS+');
    const ml = (96672 * scanFile.spacing[0] * scanFile.spacing[1] * scanFile.spacing[2]) / 1000;
    expect(card).toContain(`label:      ${ml.toFixed(1)} mL (96672 voxels)`);
    const axial = await pixels('view-axial');
    // the 164 x 166 crop fills most of the square view; a CT soft-tissue window leaves most pixels grey, not black
    expect(axial.nonBlack).toBeGreaterThan(0.5 * 384 * 384);
    expect(axial.green).toBeGreaterThan(1000);
    for (const v of ['coronal', 'sagittal']) expect((await pixels(`view-${v}`)).nonBlack).toBeGreaterThan(0.1 * 384 * 384);
    await shot('01-opened');
    expect(await page.locator('#stop').isDisabled(), 'Stop is disabled at rest, before any training').toBe(true);
    // the green comes from the label: none without it, and the label's slice (13 of 26 axial slices
    // holds 8170 voxels) covers about that many voxels times the zoom's pixels per voxel
    await page.locator('#show-label').uncheck();
    expect((await pixels('view-axial')).green).toBe(0);
    await page.locator('#show-label').check();
    const slice = Number(await page.locator('#slice-axial').inputValue());
    let inSlice = 0;
    for (let i = 0; i < 164 * 166; i++) if (labelFile.data[slice * 164 * 166 + i] > 0) inSlice++;
    const perVoxel = (384 / (166 * 0.795)) ** 2 * 0.795 ** 2; // fit to the taller side, square voxels
    expect(axial.green / (inSlice * perVoxel)).toBeGreaterThan(0.8);
    expect(axial.green / (inSlice * perVoxel)).toBeLessThan(1.2);
  });

  it('scrolling changes the slice; the cursor shows the voxel value and the world position from the affine', async () => {
    const box = await axialBox();
    const before = Number(await page.locator('#slice-axial').inputValue());
    const p0 = await pixels('view-axial');
    await page.mouse.move(box.x + 150, box.y + 200);
    await page.mouse.wheel(0, 100);
    await page.mouse.wheel(0, 100);
    await expect.poll(async () => Number(await page.locator('#slice-axial').inputValue())).toBe(before - 2);
    expect((await pixels('view-axial')).hash).not.toBe(p0.hash);
    await page.mouse.move(box.x + 151, box.y + 201);
    const text = await page.locator('#cursor').innerText();
    const m = text.match(/voxel \((\d+), (\d+), (\d+)\) = (-?[\d.]+)\s+world \((-?[\d.]+), (-?[\d.]+), (-?[\d.]+)\) mm/);
    expect(m, text).not.toBeNull();
    const ijk = m!.slice(1, 4).map(Number);
    expect(ijk[2]).toBe(before - 2);
    const value = scanFile.data[(ijk[2] * 166 + ijk[1]) * 164 + ijk[0]];
    expect(Number(m![4])).toBeCloseTo(value, 1);
    const A = scanFile.affine;
    const world = [0, 1, 2].map((r) => A[r][0] * ijk[0] + A[r][1] * ijk[1] + A[r][2] * ijk[2] + A[r][3]);
    m!.slice(5, 8).forEach((w, r) => expect(Math.abs(Number(w) - world[r])).toBeLessThan(0.051));
    await page.mouse.wheel(0, -100);
    await page.mouse.wheel(0, -100);
    await expect.poll(async () => Number(await page.locator('#slice-axial').inputValue())).toBe(before);
  });

  it('Ctrl+wheel zooms at the pointer (the voxel under it stays), a drag pans, a double click resets', async () => {
    const box = await axialBox();
    const voxel = async () => (await page.locator('#cursor').innerText()).match(/voxel \((\d+), (\d+), (\d+)\)/)!.slice(1, 4).map(Number);
    const at = [box.x + 200, box.y + 150];
    await page.mouse.move(at[0], at[1]);
    const v0 = await voxel();
    const p0 = await pixels('view-axial');
    await page.keyboard.down('Control');
    await page.mouse.wheel(0, -350); // zoom exp(0.7): about 2x
    await page.keyboard.up('Control');
    await page.mouse.move(at[0], at[1] + 1);
    await page.mouse.move(at[0], at[1]);
    const v1 = await voxel();
    v1.forEach((c, i) => expect(Math.abs(c - v0[i])).toBeLessThanOrEqual(1));
    expect((await pixels('view-axial')).hash).not.toBe(p0.hash);
    // drag 60 px left: the point under the pointer moves by 60 / (2.01 * 384 / 166) = 12.9 voxels
    await page.mouse.down();
    await page.mouse.move(at[0] - 30, at[1]);
    await page.mouse.move(at[0] - 60, at[1]);
    await page.mouse.up();
    await page.mouse.move(at[0], at[1]);
    const v2 = await voxel();
    expect(Math.abs(Math.abs(v2[0] - v1[0]) - 12.9)).toBeLessThanOrEqual(1.5);
    expect(v2[1]).toBe(v1[1]);
    // (the double click's clicks also move the cursor there, which is not the point here)
    await page.mouse.dblclick(at[0], at[1]);
    await page.mouse.move(at[0], at[1] + 1);
    await page.mouse.move(at[0], at[1]);
    expect(await voxel()).toEqual(v0);
  });

  it('window/level: presets and typed values change the grey mapping (CT soft tissue W400/L40 by default)', async () => {
    expect(await page.locator('#ww').inputValue()).toBe('400');
    expect(await page.locator('#wl').inputValue()).toBe('40');
    const grayAt = () =>
      page.evaluate(() => {
        const c = document.getElementById('view-axial') as HTMLCanvasElement;
        return c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      });
    await page.locator('#show-label').uncheck();
    const before = await grayAt();
    await page.locator('#preset').selectOption('CT lung');
    expect(await page.locator('#ww').inputValue()).toBe('1500');
    expect(await page.locator('#wl').inputValue()).toBe('-600');
    const lung = await grayAt();
    await page.locator('#ww').fill('400');
    await page.locator('#wl').fill('40');
    await page.locator('#wl').dispatchEvent('change');
    const back = await grayAt();
    await page.locator('#show-label').check();
    let changed = 0;
    let same = 0;
    for (let i = 0; i < before.length; i += 4) {
      if (before[i] !== lung[i]) changed++;
      if (before[i] === back[i]) same++;
    }
    expect(changed).toBeGreaterThan(0.3 * 384 * 384);
    expect(same).toBe(384 * 384);
    expect(await page.locator('#preset').inputValue()).toBe('custom');
  });

  it('an invalid file gives an error message and the page stays usable', async () => {
    await page.locator('#file').setInputFiles({ name: 'broken.nii.gz', mimeType: 'application/gzip', buffer: Buffer.from('this is not a NIfTI file at all') });
    await expect.poll(() => page.locator('#errors li').count()).toBe(1);
    expect(await page.locator('#errors li').innerText()).toMatch(/could not open broken\.nii\.gz/);
    await shot('02-invalid-file');
    expect(await page.locator('#scan-name').innerText()).toContain('164x166x26');
    await page.locator('#errors li button').click();
    expect(await page.locator('#errors li').count()).toBe(0);
  });
  it('trains the tiny V-Net in the worker (stop, then resume), draws the chart, segments and shows the Dice and the prediction overlay', async () => {
    // kernel timing off here (one compute pass per dispatch); the memory test below turns it on
    await page.locator('#profile-kernels').uncheck();
    await page.locator('#train-steps').fill('3');
    await page.locator('#train').click();
    // stop once the first step is reported: the worker stops between steps
    await page.waitForFunction(() => /^step [1-9]/.test(document.getElementById('train-status')!.textContent ?? ''), undefined, { timeout: 60_000 });
    expect(await page.locator('#stop').isDisabled(), 'Stop is enabled while a training run is going').toBe(false);
    await page.locator('#stop').click();
    await page.waitForSelector('#train-status[data-state="stopped"]', { timeout: 60_000 });
    const stoppedAt = Number((await page.locator('#train-status').innerText()).match(/stopped after (\d+) steps?/)![1]);
    expect(stoppedAt).toBeGreaterThanOrEqual(1);
    expect(stoppedAt).toBeLessThan(3);
    await shot('03-training-stopped');
    expect(await page.locator('#stop').isDisabled(), 'Stop is disabled once the run has stopped').toBe(true);
    expect(await page.locator('#train').innerText()).toBe('Resume');
    await page.locator('#train').click();
    await page.waitForSelector('#train-status[data-state="done"]', { timeout: 90_000 });
    expect(await page.locator('#train-status').innerText()).toContain('trained 3 steps');
    // the chart: uPlot's canvas holds the loss (#d9480f) and Dice (#2f9e44) strokes
    const strokes = await page.evaluate(() => {
      const c = document.querySelector('#chart canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let loss = 0;
      let dice = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (Math.abs(d[i] - 0xd9) < 30 && Math.abs(d[i + 1] - 0x48) < 30 && Math.abs(d[i + 2] - 0x0f) < 30) loss++;
        if (Math.abs(d[i] - 0x2f) < 30 && Math.abs(d[i + 1] - 0x9e) < 30 && Math.abs(d[i + 2] - 0x44) < 30) dice++;
      }
      return { loss, dice };
    });
    expect(strokes.loss).toBeGreaterThan(20);
    expect(strokes.dice).toBeGreaterThan(20);
    const dice = Number(await page.locator('#dice').getAttribute('data-dice'));
    expect(dice).toBeGreaterThanOrEqual(0);
    expect(dice).toBeLessThanOrEqual(1);
    expect(await page.locator('#timings').innerText()).toMatch(/V-Net training step/);
    // the prediction overlay (red) is drawn, and only while it is shown
    expect((await pixels('view-axial')).red).toBeGreaterThan(1000);
    await page.locator('#show-prediction').uncheck();
    expect((await pixels('view-axial')).red).toBe(0);
    await page.locator('#show-prediction').check();
    await shot('04-trained');
  });
  it("exports the prediction as NIfTI with the scan's geometry; its Dice against the label is the page's", async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-prediction').click()]);
    expect(download.suggestedFilename()).toBe('vnet-mask.nii.gz');
    const mask = readNifti(readFileSync((await download.path())!), 'vnet-mask.nii.gz');
    expect(mask.dims).toEqual(scanFile.dims);
    expect(mask.datatype).toBe(2);
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(mask.affine[r][c]).toBeCloseTo(scanFile.affine[r][c], 4);
    let inter = 0;
    let a = 0;
    let b = 0;
    for (let i = 0; i < mask.data.length; i++) {
      const m = mask.data[i] > 0;
      const l = labelFile.data[i] > 0;
      if (m && l) inter++;
      if (m) a++;
      if (l) b++;
    }
    expect(a).toBeGreaterThan(0);
    expect(Number(await page.locator('#dice').getAttribute('data-dice'))).toBeCloseTo((2 * inter) / (a + b), 6);
  });

  it('saves the trained V-Net as safetensors with its settings, and loading the file back segments to the same Dice', async () => {
    const dice = await page.locator('#dice').getAttribute('data-dice');
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#save-vnet').click()]);
    const path = (await download.path())!;
    const bytes = readFileSync(path);
    const saved = await weights.readSafetensors(bytes);
    expect(JSON.parse(saved.metadata.vnet_preprocessing)).toMatchObject({ spacing: [6.4, 6.4, 10], patch: [16, 32, 32] });
    expect(saved.tensors.length).toBeGreaterThanOrEqual(20);
    trainedVNet = bytes;
    trainedDice = dice;
    const file = join(outDir, 'vnet-tiny-demo.safetensors');
    writeFileSync(file, bytes);
    await page.locator('#vnet-weights').setInputFiles(file);
    await page.waitForSelector('#train-status[data-state="done"]:has-text("loaded vnet-tiny-demo.safetensors")', { timeout: 60_000 });
    expect(await page.locator('#dice').getAttribute('data-dice')).toBe(dice);
    // the GPU memory the load's segmentation reported (the memory test below checks it)
    afterLoad = { liveBytes: Number(await page.locator('#memory').getAttribute('data-live-bytes')), liveTensors: Number(await page.locator('#memory').getAttribute('data-live-tensors')) };
    loadedTensors = saved.tensors.map((t) => t.shape);
    // saved again, the loaded V-Net gives the same tensors byte for byte
    const [again] = await Promise.all([page.waitForEvent('download'), page.locator('#save-vnet').click()]);
    const first = await safetensorsTensors(bytes);
    const second = await safetensorsTensors(readFileSync((await again.path())!));
    expect([...second.keys()]).toEqual([...first.keys()]);
    for (const [k, v] of first) expect(Buffer.compare(v, second.get(k)!), k).toBe(0);
  });

  it('out of GPU memory: a refused allocation is shown with its op and bytes, and the page still segments; GPU memory stays at its baseline across repeated segmentations, and after a weights load it holds the loaded V-Net alone', async () => {
    // a real refusal: one buffer of the adapter's maxBufferSize (1 GiB on SwiftShader, whose driver refuses it)
    const bytes = Number(await page.locator('#adapter').getAttribute('data-max-buffer-size'));
    expect(bytes).toBeGreaterThan(0);
    const shown = await page.evaluate((b) => (window as unknown as { medsegDebug: { allocate(b: number): Promise<string | null> } }).medsegDebug.allocate(b), bytes);
    expect(shown, `the device gave a ${bytes}-byte buffer: nothing refused`).not.toBeNull();
    await expect.poll(() => page.locator('#errors li[data-kind="oom"]').count()).toBe(1);
    const text = await page.locator('#errors li[data-kind="oom"] span').innerText();
    console.log(`out of memory in the page: ${text}`);
    expect(text).toContain(`out of GPU memory: the device refused`);
    expect(text).toContain(`(${bytes} bytes) for medsegDebug.allocate [${bytes / 4}]`);
    expect(text).toMatch(/the page still works/);
    // the tooltip keeps the runtime's report (the adapter, the live and idle bytes, the driver's words)
    expect(await page.locator('#errors li[data-kind="oom"]').getAttribute('title')).toMatch(/^medseg: out of GPU memory: .* on .*this process held/s);
    await shot('04b-out-of-memory');
    await page.locator('#errors li[data-kind="oom"] button').click();
    expect(await page.locator('#errors li').count()).toBe(0);
    // the next action works: Segment with the loaded V-Net gives the same Dice; and repeated
    // segmentations (the load's, then two more) leave the worker's live GPU memory exactly where it
    // was after the first (tolerance: 0 bytes, 0 tensors)
    const base = await workerMemory();
    const dice = await page.locator('#dice').getAttribute('data-dice');
    const after: { liveBytes: number; liveTensors: number }[] = [];
    await page.locator('#profile-kernels').check();
    const done = Number(await page.locator('#dice').getAttribute('data-segmentations'));
    for (let n = 1; n <= 2; n++) {
      await page.locator('#segment').click();
      await page.waitForSelector(`#dice[data-segmentations="${done + n}"]`, { timeout: 60_000 });
      expect(await page.locator('#train-status').innerText()).toBe('segmented with the loaded weights');
      expect(await page.locator('#dice').getAttribute('data-dice')).toBe(dice);
      // as the segmentation reported it, then read again at rest
      const reported = { liveBytes: Number(await page.locator('#memory').getAttribute('data-live-bytes')), liveTensors: Number(await page.locator('#memory').getAttribute('data-live-tensors')) };
      after.push(reported, await workerMemory());
    }
    console.log(`worker GPU memory: before ${base.liveBytes} bytes in ${base.liveTensors} tensors; after each of 2 more segmentations (reported, then at rest) ${after.map((m) => `${m.liveBytes}/${m.liveTensors}`).join(', ')}`);
    for (const m of after) expect({ liveBytes: m.liveBytes, liveTensors: m.liveTensors }).toEqual({ liveBytes: base.liveBytes, liveTensors: base.liveTensors });
    // the at-rest figure is the loaded V-Net alone: the worker's memory at the start plus one pool
    // buffer per tensor of the file (bucketSize of its f32 bytes); and the segmentation that came with
    // the weights load already held just that (tolerance 0 bytes, 0 tensors): the trained V-Net it
    // replaced, with its Adam state and last gradients, was freed at once, not by a later collection
    const model = { liveBytes: startMemory!.liveBytes + loadedTensors.reduce((a, shape) => a + bucketSize(4 * shape.reduce((x, y) => x * y, 1)), 0), liveTensors: startMemory!.liveTensors + loadedTensors.length };
    console.log(`worker GPU memory: at the start ${startMemory!.liveBytes}/${startMemory!.liveTensors}; the V-Net's ${loadedTensors.length} tensors give ${model.liveBytes}/${model.liveTensors}; reported by the weights load's segmentation ${afterLoad!.liveBytes}/${afterLoad!.liveTensors}`);
    expect({ liveBytes: base.liveBytes, liveTensors: base.liveTensors }).toEqual(model);
    expect(afterLoad).toEqual(model);
    // the panel's top kernels of the last model run (the last segmentation), by GPU timestamps where
    // the device has timestamp-query (Chromium's SwiftShader does), else a line saying it has none
    const caption = page.locator('#profile-caption');
    expect(await caption.getAttribute('data-run')).toBe('V-Net segmentation');
    const hasTimestamps = (await page.locator('#adapter').innerText()).match(/^features: (.*)$/m)![1].split(', ').includes('timestamp-query');
    expect(await caption.getAttribute('data-source')).toBe(hasTimestamps ? 'timestamp' : 'none');
    console.log(`kernel panel: ${await caption.innerText()}\n${await page.locator('#kernels').innerText()}`);
    if (hasTimestamps) {
      const rows = await page.locator('#kernels tr:has(td)').evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent ?? '')));
      expect(rows.length).toBeGreaterThan(2);
      expect(rows.length).toBeLessThanOrEqual(8);
      const ms = (t: string) => (t.endsWith(' s') ? 1000 * parseFloat(t) : parseFloat(t));
      for (const [kernel, calls, time] of rows) {
        // a kernel of shaders/ by its file and entry point, dispatched at least once, most time first
        const [file, entry] = kernel.split(':');
        expect(readFileSync(join(ROOT, 'shaders', file), 'utf8')).toMatch(new RegExp(`fn ${entry}\\s*\\(`));
        expect(Number(calls)).toBeGreaterThanOrEqual(1);
        expect(ms(time)).toBeGreaterThanOrEqual(0);
      }
      for (let i = 1; i < rows.length; i++) expect(ms(rows[i][2])).toBeLessThanOrEqual(ms(rows[i - 1][2]) + 0.01);
      // GPU time of the run no more than its wall time
      const [gpu, wall] = (await caption.innerText()).match(/([\d.]+ m?s) of GPU time .* in ([\d.]+ m?s)$/)!.slice(1).map(ms);
      expect(gpu).toBeLessThanOrEqual(wall);
    } else expect(await caption.innerText()).toMatch(/no per-kernel times/);
    await page.locator('#profile-kernels').uncheck();
  });

  it('tiny MedSAM: a box on the axial view gives a mask overlay; a second box on the slice runs only the decoder', async () => {
    await page.locator('#show-prediction').uncheck();
    await page.locator('#show-label').uncheck();
    await page.locator('input[name="tool"][value="box"]').check();
    let box = await axialBox();
    const drag = async (x0: number, y0: number, x1: number, y1: number) => {
      box = await axialBox(); // clicks in the side panel may have scrolled the page
      await page.mouse.move(box.x + x0, box.y + y0);
      await page.mouse.down();
      await page.mouse.move(box.x + (x0 + x1) / 2, box.y + (y0 + y1) / 2);
      await page.mouse.move(box.x + x1, box.y + y1);
      await page.mouse.up();
    };
    await drag(60, 80, 300, 300);
    const first = await medsamRun(1);
    expect(first).toMatch(/encoder \d/);
    const area = Number(await page.locator('#medsam-status').getAttribute('data-area'));
    expect(area).toBeGreaterThan(0);
    // the mask is drawn in blue: about area slice pixels at (384 / (166 * 0.795))^2 * 0.795^2 canvas pixels each
    const perPixel = (384 / 166) ** 2;
    const blue = (await pixels('view-axial')).blue;
    expect(blue / (area * perPixel)).toBeGreaterThan(0.8);
    expect(blue / (area * perPixel)).toBeLessThan(1.2);
    await shot('05-medsam-box');
    await drag(100, 100, 260, 280);
    expect(await medsamRun(2)).toMatch(/cached embedding, decoder/);
    expect(await page.locator('#timings').innerText()).toMatch(/MedSAM encoder[\s\S]*MedSAM decoder/);
    // fine-tuned on this slice's label (decoder only, the cached embedding), a box around the spleen gives the spleen
    await page.locator('#medsam-steps').fill('60');
    await page.locator('#medsam-finetune').click();
    await page.waitForSelector('#medsam-status[data-state="tuned"]', { timeout: 90_000 });
    console.log(await page.locator('#medsam-status').innerText());
    const k = Number(await page.locator('#slice-axial').inputValue());
    const [nx, ny] = [164, 166];
    let [i0, j0, i1, j1] = [nx, ny, -1, -1];
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++)
        if (labelFile.data[(k * ny + j) * nx + i] > 0) [i0, j0, i1, j1] = [Math.min(i0, i), Math.min(j0, j), Math.max(i1, i), Math.max(j1, j)];
    // the axial view: i and j both run against the screen (radiological, anterior up), 384 / 166 canvas px per voxel, centred across
    const s = 384 / ny;
    const ox = (384 - nx * s) / 2;
    await drag(ox + (nx - 1 - i1 - 2) * s, (ny - 1 - j1 - 2) * s, ox + (nx - i0 + 2) * s, (ny - j0 + 2) * s);
    expect(await medsamRun(3)).toMatch(/cached embedding, decoder/);
    await shot('06-medsam-finetuned');
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-medsam').click()]);
    const mask = readNifti(readFileSync((await download.path())!), 'medsam-mask.nii.gz');
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(mask.affine[r][c]).toBeCloseTo(scanFile.affine[r][c], 4);
    let inter = 0;
    let sum = 0;
    for (let i = k * nx * ny; i < (k + 1) * nx * ny; i++) {
      const m = mask.data[i] > 0 ? 1 : 0;
      const l = labelFile.data[i] > 0 ? 1 : 0;
      inter += m * l;
      sum += m + l;
    }
    console.log(`tiny MedSAM after 60 decoder steps: Dice ${((2 * inter) / sum).toFixed(3)} on axial slice ${k}`);
    expect((2 * inter) / sum).toBeGreaterThan(0.7);
    // a positive point inside the spleen refines the box's mask: the decoder alone runs again
    await page.locator('input[name="tool"][value="point+"]').check();
    box = await axialBox();
    await page.mouse.click(box.x + ox + (nx - 1 - (i0 + i1) / 2) * s, box.y + (ny - 1 - (j0 + j1) / 2) * s);
    expect(await medsamRun(4)).toMatch(/box \+ 1 point: .*cached embedding, decoder/);
    // propagation boxes the mask of each slice on the next one (the encoder runs per slice)
    await page.locator('#propagate-n').fill('1');
    await page.locator('#propagate').click();
    await expect.poll(() => page.locator('#medsam-status').innerText(), { timeout: 90_000 }).toMatch(/^propagated/);
    await shot('07-medsam-propagated');
    const [d2] = await Promise.all([page.waitForEvent('download'), page.locator('#export-medsam').click()]);
    const propagated = readNifti(readFileSync((await d2.path())!), 'medsam-mask.nii.gz');
    for (const z of [k - 1, k + 1]) {
      let [pi, ps] = [0, 0];
      for (let i = z * nx * ny; i < (z + 1) * nx * ny; i++) {
        const m = propagated.data[i] > 0 ? 1 : 0;
        const l = labelFile.data[i] > 0 ? 1 : 0;
        pi += m * l;
        ps += m + l;
      }
      console.log(`propagated tiny MedSAM mask: Dice ${((2 * pi) / ps).toFixed(3)} on axial slice ${z}`);
      expect((2 * pi) / ps).toBeGreaterThan(0.5);
    }
    await page.locator('input[name="tool"][value="navigate"]').check();
    await page.locator('#show-prediction').check();
    await page.locator('#show-label').check();
  });

  it("TransUNet: the .npz loads as the encoder to fine-tune from (nothing to segment with); a trained .pth is converted with progress and segments the scan to Node's labels, drawn per class with a legend, while the V-Net trains, and the training gives the same weights as alone", async () => {
    // the ImageNet-21k layout holds no decoder or head: kept (converted into OPFS) as the encoder
    // to fine-tune from, the start option it names chosen; nothing to segment with yet
    await page.locator('#transunet-weights').setInputFiles(NPZ);
    const t1 = Date.now();
    await page.waitForSelector('#transunet-status[data-state="encoder"]', { timeout: 30_000 });
    console.log(`TransUNet test: npz loaded as the encoder after ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    expect(await page.locator('#transunet-status').innerText()).toMatch(/^converted and loaded transunet_tiny_in21k\.npz: TransUNet's ImageNet-21k encoder \(tiny, \d+ tensors, [\d.]+ M parameters\), no decoder or head, so it cannot segment yet/);
    expect(await page.locator('#transunet-start').inputValue()).toBe('encoder');
    expect(await page.locator('#transunet-start option[value="encoder"]').innerText()).toBe('ImageNet-21k encoder transunet_tiny_in21k.npz (tiny, 32 x 32)');
    expect(await page.locator('#errors li').count()).toBe(0);
    expect(await page.locator('#transunet-segment').isDisabled()).toBe(true);
    await init();
    const [nx, ny] = [164, 166];
    /** Drops a checkpoint, segments the scan in the page, and checks the exported labels, the legend and the overlay against segmentVolumeSlices in Node. */
    /** With `training`: the V-Net trains 3 steps from random weights while the page segments with TransUNet. */
    const segmentWith = async (file: string, bytes: Uint8Array, classes: number, training = false) => {
      const t0 = Date.now();
      const lap = (what: string) => console.log(`TransUNet test: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      await page.locator('#transunet-weights').setInputFiles({ name: file, mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) });
      await page.waitForSelector(`#transunet-status[data-state="weights"]:has-text("${file}")`, { timeout: 60_000 });
      expect(await page.locator('#transunet-status').innerText()).toContain(`converted and loaded ${file} (tiny at 32 x 32, ${classes} classes`);
      lap('loaded in the page');
      // the same weights and volume in Node (Dawn), while the page segments: the labels the page must give
      const reference = async () => {
        const ck = await weights.openCheckpoint(weights.bytesSource(bytes, file));
        const net = new models.TransUNet(models.transunetOptionsFromShapes(new Map([...ck.tensors].map(([k, r]) => [k, r.shape]))));
        await net.loadWeights(weights.bytesSource(bytes, file));
        const labels = (await models.segmentVolumeSlices(net, scanFile, { window: [-125, 275], batchSize: 4 })).labels;
        net.dispose();
        lap('segmented in Node');
        return labels;
      };
      let trainingWhenDone = '';
      if (training) {
        // in the page, so that no round trip delays it: once step 1 is reported, Segment with TransUNet
        // is clicked (the worker is running step 2 then, so it runs the segmentation between steps 2
        // and 3), and when the segmentation is done, the training's state at that moment is noted
        await page.evaluate(() => {
          const train = document.getElementById('train-status')!;
          const tu = document.getElementById('transunet-status')!;
          const onStep = new MutationObserver(() => {
            if (!/^step 1\/3/.test(train.textContent ?? '')) return;
            onStep.disconnect();
            (document.getElementById('transunet-segment') as HTMLButtonElement).click();
          });
          onStep.observe(train, { childList: true, characterData: true, subtree: true });
          const onDone = new MutationObserver(() => {
            if (tu.dataset.state !== 'done') return;
            onDone.disconnect();
            tu.dataset.trainingThen = `${train.dataset.state}: ${train.textContent}`;
          });
          onDone.observe(tu, { attributes: true, attributeFilter: ['data-state'] });
        });
        await page.locator('#train-steps').fill('3');
        await page.locator('#train').click();
      } else await page.locator('#transunet-segment').click();
      const segmented = page.waitForSelector('#transunet-status[data-state="done"]', { timeout: 150_000 }).then(async () => {
        trainingWhenDone = (await page.locator('#transunet-status').getAttribute('data-training-then')) ?? '';
        lap(`segmented in the page (V-Net then: ${trainingWhenDone})`);
      });
      const [want] = await Promise.all([reference(), segmented]);
      if (training) {
        // the segmentation ended before the training did (it ran between two of its steps) ...
        expect(trainingWhenDone).toMatch(/^training: step 2\/3/);
        await page.waitForSelector('#train-status[data-state="done"]', { timeout: 90_000 });
        lap('V-Net trained');
        // ... and the training gave, bit for bit, the weights (and batch-norm statistics) of the page's
        // first training run (same seed and patches, a stop and resume between its steps, nothing else)
        expect(await page.locator('#train-status').innerText()).toContain('trained 3 steps');
        const [saved] = await Promise.all([page.waitForEvent('download'), page.locator('#save-vnet').click()]);
        const got = await safetensorsTensors(readFileSync((await saved.path())!));
        const first = await safetensorsTensors(trainedVNet!);
        expect([...got.keys()]).toEqual([...first.keys()]);
        const differ = [...first].filter(([k, v]) => Buffer.compare(v, got.get(k)!) !== 0).map(([k]) => k);
        expect(differ, 'V-Net tensors that differ from the first training run').toEqual([]);
        expect(await page.locator('#dice').getAttribute('data-dice')).toBe(trainedDice);
      }
      const counts = new Array(classes).fill(0);
      for (const v of want) counts[v]++;
      console.log(`TransUNet ${file} on the spleen CT (Node): voxels per class ${counts.join(', ')}`);
      console.log(await page.locator('#transunet-status').innerText());
      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-transunet').click()]);
      expect(download.suggestedFilename()).toBe('transunet-mask.nii.gz');
      const mask = readNifti(readFileSync((await download.path())!), 'transunet-mask.nii.gz');
      expect(mask.dims).toEqual(scanFile.dims);
      for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(mask.affine[r][c]).toBeCloseTo(scanFile.affine[r][c], 4);
      let differ = 0;
      for (let i = 0; i < want.length; i++) if (mask.data[i] !== want[i]) differ++;
      expect(differ, 'voxels whose exported label differs from segmentVolumeSlices in Node').toBe(0);
      // the legend lists each class present (not 0) with its voxel count
      const legend = await page.locator('#transunet-legend li[data-class]').allInnerTexts();
      expect(legend).toEqual(counts.flatMap((n, c) => (c > 0 && n > 0 ? [`class ${c}: ${n} voxels`] : [])));
      // the overlay alone at opacity 1: every voxel centre of the axial slice is its class's colour
      // (grey for background), except under the crosshair's row and column
      for (const id of ['show-label', 'show-prediction', 'show-medsam']) await page.locator(`#${id}`).uncheck();
      await page.locator('#op-transunet').evaluate((el: HTMLInputElement) => {
        el.value = '1';
        el.dispatchEvent(new Event('input'));
      });
      // three slices below the current one, where no MedSAM box or point is drawn
      const k = Number(await page.locator('#slice-axial').inputValue()) - 3;
      await page.locator('#slice-axial').evaluate((el: HTMLInputElement, k) => {
        el.value = String(k);
        el.dispatchEvent(new Event('input'));
      }, k);
      // the canvas pixel at each voxel centre (i and j both run against the screen, 384 / 166 px per voxel)
      const s = 384 / ny;
      const ox = (384 - nx * s) / 2;
      const centres: number[] = [];
      for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) centres.push(Math.floor((ny - 1 - j + 0.5) * s) * 384 + Math.floor(ox + (nx - 1 - i + 0.5) * s));
      const rgb = await page.evaluate((centres) => {
        const c = document.getElementById('view-axial') as HTMLCanvasElement;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        return centres.flatMap((o) => [d[4 * o], d[4 * o + 1], d[4 * o + 2]]);
      }, centres);
      let wrong = 0;
      const drawn = new Map<number, number>();
      const inSlice = new Set<number>();
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++) {
          const c = want[(k * ny + j) * nx + i];
          if (c > 0) inSlice.add(c);
          const [r, g, b] = rgb.slice(3 * (j * nx + i), 3 * (j * nx + i) + 3);
          const ok = c === 0 ? r === g && g === b : [r, g, b].join() === classColour(c).join();
          if (!ok) wrong++;
          else if (c > 0) drawn.set(c, (drawn.get(c) ?? 0) + 1);
        }
      console.log(`TransUNet overlay on axial slice ${k}: voxel centres drawn per class ${[...drawn].map(([c, n]) => `${c}: ${n}`).join(', ')}; ${wrong} off (crosshair)`);
      lap('checked');
      expect(wrong).toBeLessThanOrEqual(nx + ny);
      expect([...drawn.keys()].sort()).toEqual([...inSlice].sort());
      await page.locator('#slice-axial').evaluate((el: HTMLInputElement, k) => {
        el.value = String(k);
        el.dispatchEvent(new Event('input'));
      }, k + 3);
      return { k, inSlice };
    };
    // train.py's torch.save(model.state_dict()) of the tiny model (imgSize 32, 2 classes)
    // the bundled scan and label opened again: the V-Net starts again from its seeded random weights
    await page.locator('#file').setInputFiles([join(ROOT, 'data/ct_spleen_msd09_crop.nii.gz'), join(ROOT, 'data/ct_spleen_msd09_crop_label.nii.gz')]);
    await expect.poll(() => page.locator('#train').innerText()).toBe('Train V-Net here');
    expect(await page.locator('#train').isDisabled()).toBe(false);
    const pth = await segmentWith('transunet_tiny.pth', readFileSync(join(ROOT, 'test/fixtures/transunet_tiny.pth')), 2, true);
    expect(pth.inSlice.size).toBeGreaterThan(0);
    expect(await page.locator('#timings').innerText()).toMatch(/TransUNet weights conversion/);
    await shot('07b-transunet');
    await page.locator('#op-transunet').evaluate((el: HTMLInputElement) => {
      el.value = '0.5';
      el.dispatchEvent(new Event('input'));
    });
    for (const id of ['show-label', 'show-prediction', 'show-medsam']) await page.locator(`#${id}`).check();
    console.log(`times measured in the page:\n${await page.locator('#timings').innerText()}`);
  });

  it('Train TransUNet here: tiny from random weights (stop, then resume) draws its chart and segments the scan slice by slice to a class overlay with its Dice; from the loaded ImageNet encoder too; each first loss is Node\'s; saved as safetensors it reads back as that model and, loaded again, segments to the same Dice', async () => {
    await init();
    const t0 = Date.now();
    const lap = (what: string) => console.log(`TransUNet training test: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Node's first step from the same seed (1234), slices, batch (4 slices at 32 x 32) and lr: the
    // loss the page must report, and the weights after it (what the page saves after one step)
    const nodeFirstStep = async (encoder: boolean) => {
      manualSeed(1234);
      const net = new models.TransUNet({ config: 'tiny', numClasses: 2 });
      if (encoder) await net.loadWeights(weights.bytesSource(readFileSync(NPZ), 'transunet_tiny_in21k.npz'));
      const trainer = new models.TransUNetTrainer(net, { baseLr: 0.01, maxSteps: 3 });
      const b = models.trainingBatch(models.volumeTrainingSlices(scanFile, labelFile).slices, 32, 4, models.patchRandom(1234));
      const images = tensor(b.images, [4, 1, 32, 32]);
      const labels = tensor(b.labels, [4, 32, 32]);
      const initial = new Map<string, Float32Array>();
      for (const [k, t] of net.stateDict()) initial.set(k, await t.read());
      const r = await trainer.step(images, labels);
      for (const t of [images, labels]) t.dispose();
      trainer.dispose();
      net.zeroGrad();
      const state = new Map<string, Float32Array>();
      for (const [k, t] of net.stateDict()) state.set(k, await t.read());
      net.dispose();
      return { loss: r.loss, state, initial };
    };
    const losses = async () => ((await page.locator('#transunet-chart').getAttribute('data-losses')) ?? '').split(',').map(Number);
    await page.locator('#transunet-start').selectOption('random');
    await page.locator('#transunet-steps').fill('3');
    await page.locator('#transunet-train').click();
    // stop once the first step is reported: the worker stops between steps
    await page.waitForFunction(() => /^step [1-9]/.test(document.getElementById('transunet-status')!.textContent ?? ''), undefined, { timeout: 60_000 });
    expect(await page.locator('#transunet-stop').isDisabled(), 'Stop is enabled while a TransUNet run is going').toBe(false);
    await page.locator('#transunet-stop').click();
    await page.waitForSelector('#transunet-status[data-state="stopped"]', { timeout: 60_000 });
    const stoppedAt = Number((await page.locator('#transunet-status').innerText()).match(/stopped after (\d+) steps?/)![1]);
    expect(stoppedAt).toBeGreaterThanOrEqual(1);
    expect(stoppedAt).toBeLessThan(3);
    expect(await page.locator('#transunet-stop').isDisabled()).toBe(true);
    expect(await page.locator('#transunet-train').innerText()).toBe('Resume');
    lap(`stopped after ${stoppedAt}`);
    const [{ loss: want }] = await Promise.all([nodeFirstStep(false), page.locator('#transunet-train').click()]);
    await page.waitForSelector('#transunet-status[data-state="done"]', { timeout: 90_000 });
    lap('trained and segmented');
    expect(await page.locator('#transunet-status').innerText()).toMatch(/^trained 3 steps \(tiny at 32 x 32, 2 classes\) and segmented the scan slice by slice/);
    const random = await losses();
    expect(random.length).toBe(3);
    expect(random[0]).toBeCloseTo(want, 4);
    // the chart: uPlot's canvas holds the loss (#d9480f) and Dice (#2f9e44) strokes
    const strokes = await page.evaluate(() => {
      const c = document.querySelector('#transunet-chart canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let loss = 0;
      let dice = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (Math.abs(d[i] - 0xd9) < 30 && Math.abs(d[i + 1] - 0x48) < 30 && Math.abs(d[i + 2] - 0x0f) < 30) loss++;
        if (Math.abs(d[i] - 0x2f) < 30 && Math.abs(d[i + 1] - 0x9e) < 30 && Math.abs(d[i + 2] - 0x44) < 30) dice++;
      }
      return { loss, dice };
    });
    expect(strokes.loss).toBeGreaterThan(20);
    expect(strokes.dice).toBeGreaterThan(20);
    expect(await page.locator('#timings').innerText()).toMatch(/TransUNet training step\s+[\d.]+ m?s \(mean [\d.]+ m?s over \d+; \d+ GPU dispatches\)/);
    // the Dice shown is the exported labels' against the label (class 1, the spleen)
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-transunet').click()]);
    const mask = readNifti(readFileSync((await download.path())!), 'transunet-mask.nii.gz');
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(mask.affine[r][c]).toBeCloseTo(scanFile.affine[r][c], 4);
    let [inter, a, b] = [0, 0, 0];
    for (let i = 0; i < mask.data.length; i++) {
      const m = mask.data[i] === 1;
      const l = labelFile.data[i] === 1;
      if (m && l) inter++;
      if (m) a++;
      if (l) b++;
    }
    const dice = Number(await page.locator('#transunet-dice').getAttribute('data-dice'));
    console.log(`TransUNet tiny after 3 steps from random weights: ${a} voxels of class 1 (label ${b}), Dice ${dice.toFixed(3)}; ${await page.locator('#transunet-dice').innerText()}`);
    expect(dice).toBeCloseTo((2 * inter) / (a + b), 6);
    expect(await page.locator('#transunet-dice').innerText()).toBe(`Dice against the label (class 1): ${dice.toFixed(3)}`);
    // the overlay: class 1's colour on the axial slice, about its predicted voxels times the canvas pixels per voxel
    const [nx, ny] = [164, 166];
    const k = Number(await page.locator('#slice-axial').inputValue());
    let inSlice = 0;
    for (let i = k * nx * ny; i < (k + 1) * nx * ny; i++) if (mask.data[i] === 1) inSlice++;
    expect(inSlice, 'class-1 voxels predicted on the shown slice').toBeGreaterThan(0);
    for (const id of ['show-label', 'show-prediction', 'show-medsam']) await page.locator(`#${id}`).uncheck();
    const opacity = (v: string) =>
      page.locator('#op-transunet').evaluate((el: HTMLInputElement, v) => {
        el.value = v;
        el.dispatchEvent(new Event('input'));
      }, v);
    // at opacity 1 a class-1 voxel's pixels are exactly its colour
    await opacity('1');
    const drawn = await page.evaluate((colour) => {
      const c = document.getElementById('view-axial') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] === colour[0] && d[i + 1] === colour[1] && d[i + 2] === colour[2]) n++;
      return { n };
    }, classColour(1));
    await opacity('0.5');
    const perVoxel = (384 / ny) ** 2;
    console.log(`TransUNet overlay on axial slice ${k}: ${drawn.n} coloured canvas pixels for ${inSlice} class-1 voxels (${(drawn.n / (inSlice * perVoxel)).toFixed(2)} of the expected)`);
    expect(drawn.n / (inSlice * perVoxel)).toBeGreaterThan(0.8);
    expect(drawn.n / (inSlice * perVoxel)).toBeLessThan(1.2);
    await shot('07c-transunet-trained');
    for (const id of ['show-label', 'show-prediction', 'show-medsam']) await page.locator(`#${id}`).check();
    // from the loaded ImageNet-21k encoder (the tiny fixture): a new run, one step; its first loss is
    // Node's from the same encoder, and not the random start's
    await page.locator('#transunet-start').selectOption('encoder');
    expect(await page.locator('#transunet-train').innerText()).toBe('Train TransUNet here');
    await page.locator('#transunet-steps').fill('1');
    const [{ loss: wantEncoder, state: nodeWeights, initial: nodeInitial }] = await Promise.all([nodeFirstStep(true), page.locator('#transunet-train').click()]);
    await page.waitForSelector('#transunet-status[data-state="done"]', { timeout: 90_000 });
    lap('trained from the encoder and segmented');
    expect(await page.locator('#transunet-status').innerText()).toMatch(/^trained 1 step \(tiny at 32 x 32, 2 classes\)/);
    const fromEncoder = await losses();
    expect(fromEncoder.length).toBe(1);
    expect(fromEncoder[0]).toBeCloseTo(wantEncoder, 4);
    expect(Math.abs(fromEncoder[0] - random[0])).toBeGreaterThan(1e-3);
    console.log(`TransUNet first-step loss: from random weights ${random[0]} (Node ${want}), from the encoder ${fromEncoder[0]} (Node ${wantEncoder})`);
    await shot('07d-transunet-from-encoder');
    // Save weights: the TransUNet trained here as the safetensors `medseg train --model transunet`
    // writes, read with the repo's reader: tiny's keys and shapes in stateDict() order (the schema
    // from the options, not the model), f32, and the CLI's metadata; the CLI's reader
    // (medseg segment --model transunet) takes it as that model
    const trainedDice = await page.locator('#transunet-dice').getAttribute('data-dice');
    const trainedLegend = await page.locator('#transunet-legend').innerText();
    expect(trainedDice).not.toBeNull();
    const [saved] = await Promise.all([page.waitForEvent('download'), page.locator('#save-transunet').click()]);
    expect(saved.suggestedFilename()).toBe('transunet-tiny-demo.safetensors');
    const bytes = readFileSync((await saved.path())!);
    const file = await weights.readSafetensors(bytes);
    const options = { config: 'tiny', imgSize: 32, numClasses: 2, nSkip: 3 } as const;
    expect(file.tensors.map((t) => [t.name, t.shape])).toEqual([...models.transunetSchema(options).tensors].map(([k, shape]) => [k, [...shape]]));
    expect(new Set(file.tensors.map((t) => t.dtype))).toEqual(new Set(['F32']));
    // its values: the weights of Node's one step from the same encoder, seed and batch (the
    // tolerance 100 times below what the step moved a value, BatchNorm's step counters aside: the
    // file holds the trained model, not its start)
    const TOLERANCE = 1e-5;
    const largest = (a: Map<string, Float32Array>, b: Map<string, Float32Array>, skip = (_k: string) => false) => {
      let worst = { key: '', diff: 0 };
      for (const [k, x] of a) {
        if (skip(k)) continue;
        const y = b.get(k)!;
        for (let i = 0; i < x.length; i++) {
          const diff = Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i]));
          if (!(diff <= worst.diff)) worst = { key: k, diff };
        }
      }
      return worst;
    };
    const savedWeights = new Map<string, Float32Array>();
    for (const t of file.tensors) savedWeights.set(t.name, await weights.readFloat32(t));
    const worst = largest(savedWeights, nodeWeights);
    const moved = largest(nodeWeights, nodeInitial, (k) => k.endsWith('.num_batches_tracked'));
    console.log(`TransUNet saved weights against Node's after its one step: largest difference ${worst.diff.toExponential(2)} (relative to 1 + |w|) in ${worst.key}; the step moved a weight by up to ${moved.diff.toExponential(2)} (${moved.key})`);
    expect(worst.diff, worst.key).toBeLessThan(TOLERANCE);
    expect(moved.diff).toBeGreaterThan(100 * TOLERANCE);
    expect(file.metadata).toEqual({ model: 'transunet', transunet_config: 'tiny', img_size: '32', num_classes: '2', n_skip: '3', steps: '1', base_lr: '0.01', trained_on: 'the demo page', started_from: 'transunet_tiny_in21k.npz' });
    const savedPath = join(outDir, 'transunet-tiny-demo.safetensors');
    writeFileSync(savedPath, bytes);
    expect((await readTransUNetWeights(savedPath)).options).toEqual(options);
    // loaded back in the page (converted into OPFS as any .safetensors), it segments the scan to the same Dice and class counts
    await page.locator('#transunet-weights').setInputFiles(savedPath);
    await page.waitForSelector('#transunet-status[data-state="weights"]', { timeout: 60_000 });
    expect(await page.locator('#transunet-status').innerText()).toMatch(/^converted and loaded transunet-tiny-demo\.safetensors \(tiny at 32 x 32, 2 classes/);
    const segmentations = Number(await page.locator('#transunet-dice').getAttribute('data-segmentations'));
    await page.locator('#transunet-segment').click();
    await page.waitForSelector(`#transunet-dice[data-segmentations="${segmentations + 1}"]`, { timeout: 60_000 });
    lap('saved, loaded back and segmented');
    console.log(`TransUNet saved (${bytes.length} bytes, ${file.tensors.length} tensors) and loaded back: Dice ${await page.locator('#transunet-dice').getAttribute('data-dice')} (trained: ${trainedDice})`);
    expect(await page.locator('#transunet-dice').getAttribute('data-dice')).toBe(trainedDice);
    expect(await page.locator('#transunet-legend').innerText()).toBe(trainedLegend);
    console.log(`times measured in the page:\n${await page.locator('#timings').innerText()}`);
  });

  it('MedSAM weights from a .pth are converted in the page, cached in OPFS, and loaded from the cache on the next visit', async () => {
    await page.locator('#medsam-weights').setInputFiles(join(ROOT, 'test/fixtures/medsam_tiny_train.pth'));
    await page.waitForSelector('#medsam-status[data-state="weights"]', { timeout: 60_000 });
    expect(await page.locator('#medsam-status').innerText()).toMatch(/converted and loaded medsam_tiny_train\.pth/);
    expect(await page.locator('#timings').innerText()).toMatch(/MedSAM weights conversion/);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    await page.waitForSelector('#medsam-status[data-state="weights"]', { timeout: 60_000 });
    expect(await page.locator('#medsam-status').innerText()).toMatch(/loaded the cached conversion of medsam_tiny_train\.pth/);
    expect(await page.locator('#timings').innerText()).toMatch(/MedSAM weights load \(cached\)\s+\d/);
    // the TransUNet the page saved and loaded back in the test before comes back from OPFS too
    expect(await page.locator('#transunet-status').innerText()).toMatch(/loaded the cached conversion of transunet-tiny-demo\.safetensors \(tiny at 32 x 32, 2 classes/);
    expect(await page.locator('#timings').innerText()).toMatch(/TransUNet weights load \(cached\)\s+\d/);
    expect(await page.locator('#transunet-segment').isDisabled()).toBe(false);
    // and so does the ImageNet-21k encoder, a start for training again
    expect(await page.locator('#transunet-start option[value="encoder"]').isDisabled()).toBe(false);
    expect(await page.locator('#transunet-start option[value="encoder"]').innerText()).toBe('ImageNet-21k encoder transunet_tiny_in21k.npz (tiny, 32 x 32)');
    await shot('08-weights-cached');
    console.log(`times measured in the page after the reload:\n${await page.locator('#timings').innerText()}`);
  });

  it('a PNG dropped on the page opens as one upright, unmirrored slice', async () => {
    // 40 x 30 pixels: the left half black, the right half white
    await page.evaluate(async () => {
      const c = new OffscreenCanvas(40, 30);
      const ctx = c.getContext('2d')!;
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, 20, 30);
      ctx.fillStyle = '#fff';
      ctx.fillRect(20, 0, 20, 30);
      const file = new File([await c.convertToBlob({ type: 'image/png' })], 'halves.png', { type: 'image/png' });
      const dt = new DataTransfer();
      dt.items.add(file);
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await expect.poll(() => page.locator('#scan-name').innerText()).toContain('halves.png: 40x30x1 voxels');
    expect(await page.locator('#errors li').count()).toBe(0);
    // 9.6 canvas pixels per image pixel, 288 rows centred: the canvas's left half dark, its right half light
    const halves = await page.evaluate(() => {
      const c = document.getElementById('view-axial') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const at = (x: number, y: number) => d[4 * (y * c.width + x)];
      return { left: at(60, 100), right: at(320, 100), top: at(200, 20) };
    });
    expect(halves.left).toBe(0);
    expect(halves.right).toBeGreaterThan(200);
    expect(halves.top).toBe(0); // above the image
    const box = await axialBox();
    await page.mouse.move(box.x + 30, box.y + 60);
    expect(await page.locator('#cursor').innerText()).toMatch(/^voxel \(3, 1, 0\) = 0\b/);
    await page.mouse.move(box.x + 380, box.y + 330);
    expect(await page.locator('#cursor').innerText()).toMatch(/^voxel \(39, 29, 0\) = 255\b/);
    await shot('09-png');
    expect(await page.locator('#stop').isDisabled(), 'Stop is disabled at rest, after opening a PNG').toBe(true);
  });

  it('made no request outside the served prefix on localhost, and logged no page errors', async () => {
    const origin = new URL(server.url).origin;
    const outside = pageRequests.filter((u) => !(u.startsWith(server.url) || u.startsWith('blob:') || u.startsWith('data:')));
    expect(outside, `requests outside ${server.url}`).toEqual([]);
    expect(pageRequests.some((u) => u.includes('ct_spleen_msd09_crop'))).toBe(true);
    expect(server.requests.filter((p) => !p.startsWith(PREFIX)), `paths outside ${PREFIX} (the build must use relative paths)`).toEqual([]);
    expect(origin).toMatch(/^http:\/\/localhost:\d+$/);
    expect(consoleErrors).toEqual([]);
  });

  it('a browser without WebGPU gets the no-WebGPU notice and a working viewer', async () => {
    const p = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await p.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true }));
      await p.goto(server.url);
      await p.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
      expect(await p.locator('#no-webgpu').isVisible()).toBe(true);
      expect(await p.locator('#no-webgpu').innerText()).toMatch(/Chrome or Edge/);
      expect(await p.locator('#train').isDisabled()).toBe(true);
      expect(await p.locator('#stop').isDisabled(), 'Stop is disabled without WebGPU').toBe(true);
      const nonBlack = await p.evaluate(() => {
        const c = document.getElementById('view-axial') as HTMLCanvasElement;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 30) n++;
        return n;
      });
      expect(nonBlack).toBeGreaterThan(0.5 * 384 * 384);
      await p.screenshot({ path: join(ARTIFACTS, '10-no-webgpu.png'), fullPage: true });
    } finally {
      await p.close();
    }
  });

  it('Chromium without its WebGPU flags (navigator.gpu without an adapter, or none) gets the same notice', async () => {
    const found = findChromium(probe({ root: ROOT }))!;
    const plain = await chromium.launch({ executablePath: found.path, args: chromiumArgs(false).filter((a) => !/webgpu/.test(a)), headless: true });
    try {
      const p = await plain.newPage();
      await p.goto(server.url);
      await p.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
      expect(await p.locator('#no-webgpu').isVisible()).toBe(true);
      console.log(`without WebGPU flags: ${await p.locator('#no-webgpu-detail').innerText()}`);
      expect(await p.locator('#train').isDisabled()).toBe(true);
    } finally {
      await plain.close();
    }
  });
});
