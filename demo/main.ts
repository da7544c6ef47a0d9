// The demo page: opens the bundled spleen CT and its manual label (or files the user picks or
// drops; a PNG or JPEG opens as one slice), shows them in the three-view viewer, trains the tiny
// V-Net on them in the GPU worker with a live chart and segments the scan, runs tiny MedSAM on
// boxes and points drawn on the axial view (after fine-tuning its decoder on the label, or with
// loaded weights), fine-tunes TransUNet on the scan's axial slices (tiny from random weights, or a
// loaded ImageNet-21k encoder) with its own chart, segments the scan slice by slice with it or with
// a loaded TransUNet (a class colour each, with a legend and each class's Dice), and exports masks
// as NIfTI on the scan's grid. Every error lands in the page's
// error list (out of GPU memory names what was refused); the page stays usable. Nothing is fetched
// but the page's own files. window.medsegDebug reads the worker's GPU memory and asks for a buffer.
import { io } from '../src/index.js';
import type { Volume } from '../src/io/index.js';
import scanUrl from '../data/ct_spleen_msd09_crop.nii.gz?url';
import labelUrl from '../data/ct_spleen_msd09_crop_label.nii.gz?url';
import attributionUrl from '../data/LICENSES/CC-BY-SA-4.0-ATTRIBUTION.txt?url';
import { Engine, WorkerError } from './engine.js';
import { readImageFile } from './image2d.js';
import { TrainingChart } from './chart.js';
import { Viewer, type OverlayName, type Tool } from './viewer.js';
import { CT_PRESETS, IMAGE_PRESET, axisCodes, classColour, looksLikeCt, percentileWindow, pixelToVoxel, sliceGray, voxelIndex } from './slices.js';
import type {
  Event as WorkerEvent,
  FinetuneResult,
  InitResult,
  MedsamResult,
  MemoryReport,
  SavedModel,
  SegmentResultMsg,
  TrainResult,
  TransunetEncoderResult,
  TransunetLoadResult,
  TransunetSegmentMsg,
  TransunetTrainResult,
  TransunetWeightsResult,
  WeightsResult,
} from './protocol.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`);
const fmtBytes = (b: number) =>
  b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(2)} GiB` : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`;

/** An error's text for the page; a refused GPU allocation says what was refused and that the page still works. */
function message(e: unknown): string {
  if (e instanceof WorkerError && e.oom)
    return (
      `out of GPU memory: the device refused ${fmtBytes(e.oom.bytes)} (${e.oom.bytes} bytes) for ${e.oom.op}. ` +
      'The worker has released its idle GPU buffers and the page still works: try again, with a smaller input, or after closing other tabs that use the GPU'
    );
  return e instanceof Error ? e.message : String(e);
}

// ---- errors: listed in the page, each dismissable; an out-of-memory one keeps the runtime's full report as its tooltip ----
function showError(text: string, cause?: unknown): void {
  const li = document.createElement('li');
  li.className = 'error';
  if (cause instanceof WorkerError && cause.oom) {
    li.dataset.kind = 'oom';
    li.title = cause.message;
  }
  const span = document.createElement('span');
  span.textContent = text;
  const close = document.createElement('button');
  close.textContent = 'dismiss';
  close.onclick = () => li.remove();
  li.append(span, close);
  $('errors').append(li);
}
window.addEventListener('unhandledrejection', (e) => showError(message(e.reason), e.reason));
window.addEventListener('error', (e) => showError(e.message));

// ---- state ----
let scan: Volume | null = null;
let label: Volume | null = null;
let scanId = 0;
const hasWebGpu = 'gpu' in navigator && !!navigator.gpu;
let engine: Engine | null = null;
let gpuReady = false;
/** the adapter is a CPU one (SwiftShader, llvmpipe): the full TransUNet is not chosen for the user there */
let cpuAdapter = false;
/** a training run is going (the only time Stop is enabled) */
let training = false;
/** V-Net weights are loading from a file (the V-Net is busy, but there is nothing to stop) */
let loadingVNet = false;
/** the total step count of a stopped training run, which Resume completes */
let resumeTarget: number | null = null;
/** a V-Net was loaded from a file (it can segment without training) */
let vnetLoaded = false;
let medsamBusy = false;
/** the loaded TransUNet (null: none yet), and whether it is converting or segmenting */
let transunetWeights: TransunetWeightsResult | null = null;
let transunetBusy = false;
/** a TransUNet training run is going (the only time its Stop is enabled) */
let tuTraining = false;
/** the total step count of a stopped TransUNet run, which Resume completes */
let tuResumeTarget: number | null = null;
const tuStepTimes: number[] = [];
const timings = new Map<string, string>();
const stepTimes: number[] = [];

const viewer = new Viewer($('views'), {
  onCursor: (c) => {
    $('cursor').textContent = c
      ? `voxel (${c.ijk.join(', ')}) = ${Number.isInteger(c.value) ? c.value : c.value.toFixed(2)}\nworld (${c.world.map((w) => w.toFixed(1)).join(', ')}) mm`
      : 'move the pointer over a view';
  },
  onBox: (slice, box) => void runMedsam(slice, box, null),
  onPoint: (slice) => {
    const b = viewer.lastBox;
    if (!b || b.slice !== slice) return showError('points refine a box: draw a box on this slice first (box tool)');
    const pts = viewer.points.filter((p) => p.slice === slice);
    void runMedsam(slice, b.box, { coords: pts.map((p) => [p.u + 0.5, p.v + 0.5] as [number, number]), labels: pts.map((p) => (p.positive ? 1 : 0)) });
  },
});
const chart = new TrainingChart($('chart'));
const tuChart = new TrainingChart($('transunet-chart'), { loss: 'loss (0.5 CE + 0.5 Dice loss)', dice: 'soft Dice (1 - Dice loss)' });

// ---- display controls ----
const preset = $<HTMLSelectElement>('preset');
for (const name of [...Object.keys(CT_PRESETS), 'MR (auto, percentiles)', IMAGE_PRESET.name, 'custom']) preset.add(new Option(name, name));
function applyWindow(width: number, level: number): void {
  viewer.window = { width, level };
  $<HTMLInputElement>('ww').value = String(Math.round(width * 100) / 100);
  $<HTMLInputElement>('wl').value = String(Math.round(level * 100) / 100);
  viewer.draw();
}
preset.onchange = () => {
  if (preset.value === 'custom') return;
  const p = CT_PRESETS[preset.value] ?? (preset.value === IMAGE_PRESET.name ? IMAGE_PRESET : scan ? percentileWindow(scan.data) : { width: 1, level: 0 });
  applyWindow(p.width, p.level);
};
for (const id of ['ww', 'wl'])
  $<HTMLInputElement>(id).addEventListener('change', () => {
    const w = Number($<HTMLInputElement>('ww').value);
    const l = Number($<HTMLInputElement>('wl').value);
    if (Number.isFinite(w) && w > 0 && Number.isFinite(l)) {
      preset.value = 'custom';
      applyWindow(w, l);
    }
    else showError('window must be a positive number and level a number');
  });
for (const name of ['label', 'prediction', 'medsam', 'transunet'] as OverlayName[]) {
  $<HTMLInputElement>(`show-${name}`).onchange = (e) => {
    viewer.visible[name] = (e.target as HTMLInputElement).checked;
    viewer.draw();
  };
  $<HTMLInputElement>(`op-${name}`).oninput = (e) => {
    viewer.opacity[name] = Number((e.target as HTMLInputElement).value);
    viewer.draw();
  };
}
for (const r of document.querySelectorAll<HTMLInputElement>('input[name="tool"]')) r.onchange = () => (viewer.tool = r.value as Tool);

// ---- the case card (the views' fourth cell): geometry and the volume of each mask ----
const info = document.createElement('section');
info.id = 'info';
info.className = 'pane info mono small';
$('views').append(info);
function updateInfo(): void {
  if (!scan) return void (info.textContent = '');
  const letters = ['RL', 'AP', 'SI'];
  const codes = axisCodes(scan.affine).map((c) => letters[c.world][c.sign > 0 ? 0 : 1]).join('');
  const voxelMl = (scan.spacing[0] * scan.spacing[1] * scan.spacing[2]) / 1000;
  const volume = (m: Uint8Array | null) => {
    if (!m) return '-';
    let n = 0;
    for (const v of m) n += v > 0 ? 1 : 0;
    return `${(n * voxelMl).toFixed(1)} mL (${n} voxels)`;
  };
  info.textContent = [
    `${$('scan-name').dataset.name ?? ''}`,
    `${scan.dims.join(' x ')} voxels, ${scan.spacing.map((x) => x.toFixed(3)).join(' x ')} mm, axes ${codes}+`,
    'voxel -> world (mm):',
    ...scan.affine.slice(0, 3).map((r) => '  ' + r.map((x) => x.toFixed(3).padStart(9)).join(' ')),
    '',
    `label:      ${volume(viewer.masks.label)}`,
    `prediction: ${volume(viewer.masks.prediction)}`,
    `MedSAM:     ${volume(viewer.masks.medsam)}`,
    `TransUNet:  ${volume(viewer.masks.transunet)} not background`,
  ].join('\n');
}

// ---- opening scans ----
function openVolume(vol: Volume, lab: Volume | null, name: string, kind: 'scan' | 'image' = 'scan'): void {
  if (lab && lab.dims.join() !== vol.dims.join()) {
    showError(`${name}: the label's dims ${lab.dims.join('x')} differ from the scan's ${vol.dims.join('x')}; opened the scan without it`);
    lab = null;
  }
  scan = vol;
  label = lab;
  scanId++;
  viewer.setVolume(vol, lab);
  const ct = looksLikeCt(vol.data);
  preset.value = kind === 'image' ? IMAGE_PRESET.name : ct ? 'CT soft tissue' : 'MR (auto, percentiles)';
  preset.onchange!(new Event('change'));
  $('scan-name').dataset.name = name;
  $('scan-name').textContent = `${name}: ${vol.dims.join('x')} voxels at ${vol.spacing.map((s) => s.toFixed(2)).join('x')} mm${lab ? ', with label' : ', no label'}`;
  for (const w of vol.warnings ?? []) showError(`${name}: ${w}`);
  chart.clear();
  resumeTarget = null;
  vnetLoaded = false;
  stepTimes.length = 0;
  $('dice').textContent = '';
  $('train').textContent = 'Train V-Net here';
  setTrainState('idle', lab ? 'random weights; trains on the open scan and its label' : 'this scan has no label: open it with its label file to train');
  $('transunet-legend').replaceChildren();
  // a TransUNet run trains on its scan's slices: the next Train starts a new run on this scan
  newTransunetRun();
  $('transunet-dice').textContent = '';
  delete $('transunet-dice').dataset.dice;
  if (transunetWeights) setTransunetState('weights', `${transunetWeights.name} loaded: Segment with TransUNet labels the open scan`);
  setMedsamState('idle', lab ? 'fine-tune MedSAM on the label or load weights, then draw a box on the axial view with the box tool' : 'draw a box on the axial view with the box tool');
  document.body.dataset.scan = String(scanId);
  updateInfo();
  if (engine && gpuReady) void engine.request('setScan', { scan: vol, label: lab }).catch((e) => showError(message(e), e));
  updateButtons();
}

/** 'could not open NAME: why', without the reader's own leading 'NAME: '. */
const openError = (name: string, e: unknown) => `could not open ${name}: ${message(e).replace(`${name}: `, '')}`;

async function openFiles(files: File[]): Promise<void> {
  const isImage = (f: File) => /\.(png|jpe?g)$/i.test(f.name);
  const nifti = files.filter((f) => /\.nii(\.gz)?$/i.test(f.name));
  for (const f of files) if (!nifti.includes(f) && !isImage(f)) showError(`${f.name}: not a NIfTI file (.nii or .nii.gz) nor a PNG/JPEG image`);
  const isLabel = (f: File) => /label|seg|mask/i.test(f.name);
  if (!nifti.length) {
    const img = files.find(isImage);
    if (!img) return;
    try {
      openVolume(await readImageFile(img, img.name), null, img.name, 'image');
    } catch (e) {
      showError(openError(img.name, e));
    }
    return;
  }
  // a label alone for the open scan (same grid): it replaces the scan's label
  if (nifti.length === 1 && isLabel(nifti[0]) && scan) {
    try {
      const lab = io.readNifti(new Uint8Array(await nifti[0].arrayBuffer()), nifti[0].name);
      if (lab.dims.join() === scan.dims.join()) return openVolume(scan, lab, $('scan-name').dataset.name ?? 'scan');
    } catch (e) {
      return showError(openError(nifti[0].name, e));
    }
  }
  const scanFile = nifti.find((f) => !isLabel(f)) ?? nifti[0];
  const labelFile = nifti.find((f) => f !== scanFile && isLabel(f)) ?? null;
  try {
    const vol = io.readNifti(new Uint8Array(await scanFile.arrayBuffer()), scanFile.name);
    let lab: Volume | null = null;
    if (labelFile) {
      try {
        lab = io.readNifti(new Uint8Array(await labelFile.arrayBuffer()), labelFile.name);
      } catch (e) {
        showError(message(e), e);
      }
    }
    openVolume(vol, lab, scanFile.name);
  } catch (e) {
    showError(openError(scanFile.name, e));
  }
}

$<HTMLInputElement>('file').onchange = (e) => {
  const input = e.target as HTMLInputElement;
  void openFiles([...(input.files ?? [])]);
  input.value = '';
};
let dragDepth = 0;
document.addEventListener('dragenter', (e) => {
  e.preventDefault();
  dragDepth++;
  $('drop').hidden = false;
});
document.addEventListener('dragleave', () => {
  if (--dragDepth <= 0) $('drop').hidden = true;
});
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  $('drop').hidden = true;
  void openFiles([...(e.dataTransfer?.files ?? [])]);
});

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function openBundled(): Promise<void> {
  try {
    const [s, l] = await Promise.all([fetchBytes(scanUrl), fetchBytes(labelUrl)]);
    openVolume(io.readNifti(s, 'ct_spleen_msd09_crop.nii.gz'), io.readNifti(l, 'ct_spleen_msd09_crop_label.nii.gz'), 'ct_spleen_msd09_crop.nii.gz');
  } catch (e) {
    showError(`could not open the bundled scan: ${message(e)}`, e);
  }
}

// ---- the adapter panel ----
function setTiming(name: string, value: string): void {
  timings.set(name, value);
  const t = $<HTMLTableElement>('timings');
  t.replaceChildren(
    ...[...timings].map(([k, v]) => {
      const tr = document.createElement('tr');
      const a = document.createElement('td');
      const b = document.createElement('td');
      a.textContent = k;
      b.textContent = v;
      tr.append(a, b);
      return tr;
    }),
  );
}
function showMemory(m: MemoryReport): void {
  $('memory').dataset.liveBytes = String(m.liveBytes);
  $('memory').dataset.liveTensors = String(m.liveTensors);
  $('memory').textContent = `GPU memory in use: ${fmtBytes(m.liveBytes)} in ${m.liveTensors} tensors (peak ${fmtBytes(m.peakBytes)}, pooled idle ${fmtBytes(m.idleBytes)})`;
}

/** The top kernels of the last model run, by GPU time from timestamp queries; where the device has none, says so. */
function showProfile(p: Extract<WorkerEvent, { kind: 'profile' }>): void {
  const caption = $('profile-caption');
  caption.dataset.source = p.source;
  caption.dataset.run = p.run;
  const rows = $<HTMLTableElement>('kernels');
  if (p.source === 'none') {
    caption.textContent = `${p.run}: no per-kernel times, ${p.why} (WebGPU timestamp queries)`;
    rows.replaceChildren();
    return;
  }
  caption.textContent = `top kernels of the last run, ${p.run}: ${p.dispatches} dispatches of ${p.kernelCount} kernels, ${fmtMs(p.gpuMs)} of GPU time (timestamp queries) in ${fmtMs(p.wallMs)}`;
  const row = (cells: string[], head = false) => {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement(head ? 'th' : 'td');
      td.textContent = c;
      tr.append(td);
    }
    return tr;
  };
  rows.replaceChildren(
    row(['kernel', 'calls', 'GPU time', 'share'], true),
    ...p.kernels.map((k) => row([k.kernel, String(k.calls), fmtMs(k.ms), `${p.gpuMs > 0 ? ((100 * k.ms) / p.gpuMs).toFixed(1) : '0.0'}%`])),
  );
}

$<HTMLInputElement>('profile-kernels').onchange = (e) => {
  const on = (e.target as HTMLInputElement).checked;
  if (engine && gpuReady) void engine.request('setProfiling', { on }).catch((err) => showError(message(err), err));
};

// ---- V-Net ----
function setTrainState(state: string, text: string): void {
  const el = $('train-status');
  el.dataset.state = state;
  el.textContent = text;
}
function updateButtons(): void {
  const gpu = gpuReady && !!scan;
  const vnetBusy = training || loadingVNet;
  $<HTMLButtonElement>('train').disabled = !gpu || !label || vnetBusy;
  $<HTMLButtonElement>('stop').disabled = !training;
  $<HTMLButtonElement>('segment').disabled = !gpu || vnetBusy || !(chart.points > 0 || vnetLoaded);
  $<HTMLButtonElement>('save-vnet').disabled = !gpu || vnetBusy || !(chart.points > 0 || vnetLoaded);
  $<HTMLInputElement>('vnet-weights').disabled = !gpu || vnetBusy;
  $<HTMLButtonElement>('export-prediction').disabled = !viewer.masks.prediction;
  $<HTMLButtonElement>('export-medsam').disabled = !viewer.masks.medsam;
  $<HTMLButtonElement>('propagate').disabled = !gpu || medsamBusy || !viewer.masks.medsam || !viewer.lastBox;
  $<HTMLButtonElement>('medsam-finetune').disabled = !gpu || medsamBusy || !label;
  $<HTMLInputElement>('medsam-weights').disabled = !gpuReady || medsamBusy;
  $<HTMLInputElement>('transunet-weights').disabled = !gpuReady || transunetBusy;
  $<HTMLButtonElement>('transunet-segment').disabled = !gpu || transunetBusy || !transunetWeights;
  $<HTMLButtonElement>('save-transunet').disabled = !gpuReady || transunetBusy || !transunetWeights;
  $<HTMLButtonElement>('transunet-train').disabled = !gpu || !label || transunetBusy;
  $<HTMLButtonElement>('transunet-stop').disabled = !tuTraining;
  $<HTMLSelectElement>('transunet-start').disabled = !gpu || transunetBusy;
  $<HTMLButtonElement>('export-transunet').disabled = !viewer.masks.transunet;
}

function showSegmentation(s: SegmentResultMsg): void {
  viewer.setMask('prediction', s.labels);
  $('dice').dataset.segmentations = String(Number($('dice').dataset.segmentations ?? 0) + 1);
  updateInfo();
  setTiming('V-Net segmentation', `${fmtMs(s.ms)} (${s.windows} window${s.windows === 1 ? '' : 's'})`);
  showMemory(s.memory);
  if (s.dice !== null) {
    $('dice').textContent = `Dice against the label: ${s.dice.toFixed(3)}`;
    $('dice').dataset.dice = String(s.dice);
  }
  updateButtons();
}

$('train').onclick = async () => {
  if (!engine || !scan) return;
  const steps = Number($<HTMLInputElement>('train-steps').value);
  if (!(Number.isInteger(steps) && steps > 0)) return showError('steps must be a positive whole number');
  // Resume finishes the interrupted run; otherwise `steps` more steps (the worker counts the total)
  const target = resumeTarget ?? chart.points + steps;
  training = true;
  updateButtons();
  setTrainState('training', `training: preparing the scan (resampling to 6.4 x 6.4 x 10 mm)…`);
  const id = scanId;
  try {
    const r = await engine.request<TrainResult>('train', { steps: target, lr: 1e-2 });
    if (id !== scanId) return;
    resumeTarget = r.stopped ? target : null;
    $('train').textContent = r.stopped ? 'Resume' : 'Train more';
    if (r.stopped) setTrainState('stopped', `stopped after ${r.steps} step${r.steps === 1 ? '' : 's'}; Resume continues with the same weights, Segment uses them now`);
    if (r.segmentation) {
      showSegmentation(r.segmentation);
      setTrainState('done', `trained ${r.steps} step${r.steps === 1 ? '' : 's'} and segmented the scan (the model trained on this label: the Dice checks the pipeline, not generalisation)`);
    }
  } catch (e) {
    setTrainState('error', `training failed: ${message(e)}`);
    showError(`training failed: ${message(e)}`, e);
  } finally {
    training = false;
    updateButtons();
  }
};
$('stop').onclick = () => void engine?.request('stop').catch((e) => showError(message(e), e));
$('segment').onclick = async () => {
  if (!engine) return;
  setTrainState('segmenting', 'segmenting the scan…');
  $<HTMLButtonElement>('segment').disabled = true;
  try {
    showSegmentation(await engine.request<SegmentResultMsg>('segment'));
    setTrainState('done', chart.points ? `segmented with the weights after ${chart.points} step${chart.points === 1 ? '' : 's'}` : 'segmented with the loaded weights');
  } catch (e) {
    setTrainState('error', `segmentation failed: ${message(e)}`);
    showError(`segmentation failed: ${message(e)}`, e);
  } finally {
    updateButtons();
  }
};

function download(bytes: Uint8Array, name: string, type: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** Downloads one of the page's models as safetensors (the file `medseg train` writes: `medseg segment` reads it). */
async function saveWeights(model: SavedModel, file: string, what: string): Promise<void> {
  if (!engine) return;
  try {
    download(await engine.request<Uint8Array>('saveWeights', { model }), file, 'application/octet-stream');
  } catch (e) {
    showError(`saving the ${what} failed: ${message(e)}`, e);
  }
}
$('save-vnet').onclick = () => saveWeights('vnet', 'vnet-tiny-demo.safetensors', 'V-Net');
$<HTMLInputElement>('vnet-weights').onchange = async (e) => {
  const input = e.target as HTMLInputElement;
  const file = input.files?.[0];
  input.value = '';
  if (!file || !engine) return;
  loadingVNet = true;
  updateButtons();
  setTrainState('segmenting', `loading ${file.name}…`);
  try {
    const t0 = performance.now();
    const r = await engine.request<SegmentResultMsg>('loadVNet', { file });
    vnetLoaded = true;
    chart.clear();
    resumeTarget = null;
    $('train').textContent = 'Train more';
    setTiming('V-Net weights load + segmentation', fmtMs(performance.now() - t0));
    showSegmentation(r);
    setTrainState('done', `loaded ${file.name} and segmented the scan`);
  } catch (err) {
    setTrainState('error', `could not load ${file.name}`);
    showError(`could not load V-Net weights from ${file.name}: ${message(err)}`, err);
  } finally {
    loadingVNet = false;
    updateButtons();
  }
};

function exportMask(mask: Uint8Array | null, what: string, description = `medseg ${what}`): void {
  if (!mask || !scan) return;
  try {
    download(io.writeNifti(mask, scan, { datatype: 'uint8', description }), `${what}-mask.nii.gz`, 'application/gzip');
  } catch (e) {
    showError(`export failed: ${message(e)}`, e);
  }
}
$('export-prediction').onclick = () => exportMask(viewer.masks.prediction, 'vnet');
$('export-medsam').onclick = () => exportMask(viewer.masks.medsam, 'medsam');
$('export-transunet').onclick = () => exportMask(viewer.masks.transunet, 'transunet', `medseg transunet class ids 0-${(transunetWeights?.numClasses ?? 1) - 1}, 0 background`);

// ---- MedSAM ----
function setMedsamState(state: string, text: string): void {
  const el = $('medsam-status');
  el.dataset.state = state;
  el.textContent = text;
}

/** Axial slice `slice` as MedSAM's gray input (the current window), and a key naming it for the embedding cache. */
function axialImage(slice: number): { imageKey: string; image: { data: Uint8Array; width: number; height: number } } {
  const spec = viewer.specs!.axial;
  const { width, level } = viewer.window;
  const gray = sliceGray(scan!, spec, slice, width, level);
  return { imageKey: `${scanId}:${slice}:${width}:${level}`, image: { data: new Uint8Array(gray.buffer), width: scan!.dims[spec.hAxis], height: scan!.dims[spec.vAxis] } };
}

$('medsam-finetune').onclick = async () => {
  if (!engine || !scan || !viewer.masks.label || medsamBusy) return;
  const steps = Number($<HTMLInputElement>('medsam-steps').value);
  if (!(Number.isInteger(steps) && steps > 0)) return showError('steps must be a positive whole number');
  const slice = viewer.slice('axial');
  const spec = viewer.specs!.axial;
  const { imageKey, image } = axialImage(slice);
  const mask = new Uint8Array(image.width * image.height);
  for (let v = 0; v < image.height; v++)
    for (let u = 0; u < image.width; u++) mask[v * image.width + u] = viewer.masks.label[voxelIndex(scan.dims, pixelToVoxel(spec, scan.dims, slice, u, v))];
  medsamBusy = true;
  updateButtons();
  setMedsamState('training', `fine-tuning the decoder on slice ${slice + 1}…`);
  try {
    const r = await engine.request<FinetuneResult>('medsamFinetune', { imageKey, image, mask, steps });
    setTiming('MedSAM fine-tuning step', fmtMs(r.msPerStep));
    setMedsamState('tuned', `fine-tuned the decoder ${r.steps} steps on slice ${slice + 1}'s label (loss ${r.loss.toFixed(3)}, training Dice ${r.dice.toFixed(3)}); draw a box`);
  } catch (e) {
    setMedsamState('error', `fine-tuning failed: ${message(e)}`);
    showError(`MedSAM fine-tuning failed: ${message(e)}`, e);
  } finally {
    medsamBusy = false;
    updateButtons();
  }
};

/** Runs MedSAM on axial slice `slice` with a box (slice pixels); writes the mask into the MedSAM overlay. Returns the mask area. */
async function runMedsam(slice: number, box: [number, number, number, number], points: { coords: [number, number][]; labels: number[] } | null): Promise<number> {
  if (!engine || !gpuReady || !scan) {
    showError('MedSAM needs WebGPU, which this page could not open');
    return 0;
  }
  if (medsamBusy) return 0;
  medsamBusy = true;
  updateButtons();
  const spec = viewer.specs!.axial;
  const { imageKey, image } = axialImage(slice);
  const w = image.width;
  const h = image.height;
  const id = scanId;
  setMedsamState('running', `slice ${slice + 1}: MedSAM…`);
  const progress = $<HTMLProgressElement>('medsam-progress');
  progress.hidden = false;
  progress.value = 0;
  try {
    const r = await engine.request<MedsamResult>('medsam', {
      imageKey,
      image,
      box,
      points,
    });
    if (id !== scanId) return 0;
    const mask = viewer.masks.medsam ?? new Uint8Array(scan.data.length);
    for (let v = 0; v < h; v++) for (let u = 0; u < w; u++) mask[voxelIndex(scan.dims, pixelToVoxel(spec, scan.dims, slice, u, v))] = r.mask[v * w + u];
    viewer.setMask('medsam', mask);
    updateInfo();
    if (r.encoderMs !== null) setTiming('MedSAM encoder', fmtMs(r.encoderMs));
    setTiming('MedSAM decoder', fmtMs(r.decoderMs));
    showMemory(r.memory);
    const el = $('medsam-status');
    el.dataset.area = String(r.area);
    const prompt = points ? `box + ${points.labels.length} point${points.labels.length === 1 ? '' : 's'}` : 'box';
    el.dataset.runs = String(Number(el.dataset.runs ?? 0) + 1);
    setMedsamState('done', `slice ${slice + 1}, ${prompt}: mask of ${r.area} pixels (IoU estimate ${r.iou.toFixed(2)}); ${r.encoderMs !== null ? `encoder ${fmtMs(r.encoderMs)} + ` : 'cached embedding, '}decoder ${fmtMs(r.decoderMs)}`);
    return r.area;
  } catch (e) {
    setMedsamState('error', `MedSAM failed: ${message(e)}`);
    showError(`MedSAM failed: ${message(e)}`, e);
    return 0;
  } finally {
    progress.hidden = true;
    medsamBusy = false;
    updateButtons();
  }
}

/** The bounding box (slice pixels) of the MedSAM mask on an axial slice, or null where it is empty. */
function maskBox(slice: number, pad: number): [number, number, number, number] | null {
  const spec = viewer.specs!.axial;
  const m = viewer.masks.medsam!;
  const dims = scan!.dims;
  const w = dims[spec.hAxis];
  const h = dims[spec.vAxis];
  let u0 = Infinity;
  let v0 = Infinity;
  let u1 = -Infinity;
  let v1 = -Infinity;
  for (let v = 0; v < h; v++)
    for (let u = 0; u < w; u++)
      if (m[voxelIndex(dims, pixelToVoxel(spec, dims, slice, u, v))]) {
        u0 = Math.min(u0, u);
        v0 = Math.min(v0, v);
        u1 = Math.max(u1, u + 1);
        v1 = Math.max(v1, v + 1);
      }
  if (u0 === Infinity) return null;
  return [Math.max(0, u0 - pad), Math.max(0, v0 - pad), Math.min(w, u1 + pad), Math.min(h, v1 + pad)];
}

$('propagate').onclick = async () => {
  const start = viewer.lastBox;
  if (!start || !scan) return;
  const n = scan.dims[viewer.specs!.axial.sliceAxis];
  const reach = Number($<HTMLInputElement>('propagate-n').value);
  if (!(Number.isInteger(reach) && reach > 0)) return showError('the number of slices to propagate must be a positive whole number');
  for (const dir of [1, -1]) {
    let prev = start.slice;
    for (let k = 1; k <= reach; k++) {
      const s = start.slice + dir * k;
      if (s < 0 || s >= n) break;
      const box = maskBox(prev, 2);
      if (!box) break;
      if ((await runMedsam(s, box, null)) === 0) break;
      prev = s;
    }
  }
  setMedsamState('done', `propagated from slice ${start.slice + 1}; ${$('medsam-status').textContent}`);
};

$<HTMLInputElement>('medsam-weights').onchange = async (e) => {
  const input = e.target as HTMLInputElement;
  const file = input.files?.[0];
  input.value = '';
  if (!file || !engine) return;
  setMedsamState('loading', `loading ${file.name}…`);
  try {
    showWeights(await engine.request<WeightsResult>('loadMedsamWeights', { file }));
  } catch (err) {
    setMedsamState('error', `could not load ${file.name}`);
    showError(`could not load MedSAM weights from ${file.name}: ${message(err)}`, err);
  }
};

function showWeights(r: WeightsResult): void {
  if (!r.fromCache) setTiming('MedSAM weights conversion', fmtMs(r.convertMs));
  setTiming(r.fromCache ? 'MedSAM weights load (cached)' : 'MedSAM weights load', fmtMs(r.loadMs));
  setMedsamState('weights', `${r.fromCache ? 'loaded the cached conversion of' : 'converted and loaded'} ${r.name} (${r.tensors} tensors${r.notes.length ? `; ${r.notes.join('; ')}` : ''}); draw a box`);
}

// ---- TransUNet ----
/** The next Train starts a new TransUNet run (a new model from the chosen start): no steps charted, nothing to resume. */
function newTransunetRun(): void {
  tuChart.clear();
  delete $('transunet-chart').dataset.losses;
  tuResumeTarget = null;
  tuStepTimes.length = 0;
  $('transunet-train').textContent = 'Train TransUNet here';
}

function setTransunetState(state: string, text: string): void {
  const el = $('transunet-status');
  el.dataset.state = state;
  el.textContent = text;
}

function showTransunetWeights(r: TransunetWeightsResult): void {
  transunetWeights = r;
  // a loaded model replaces one trained here: the next Train starts a new run
  newTransunetRun();
  if (!r.fromCache) setTiming('TransUNet weights conversion', fmtMs(r.convertMs));
  setTiming(r.fromCache ? 'TransUNet weights load (cached)' : 'TransUNet weights load', fmtMs(r.loadMs));
  const what = `${r.config} at ${r.imgSize} x ${r.imgSize}, ${r.numClasses} classes, ${r.tensors} tensors`;
  setTransunetState('weights', `${r.fromCache ? 'loaded the cached conversion of' : 'converted and loaded'} ${r.name} (${what}${r.notes.length ? `; ${r.notes.join('; ')}` : ''}); Segment with TransUNet labels the open scan`);
  updateButtons();
}

/** The legend: each class id present in the labels, its colour and voxel count (0 is background, not drawn). */
function showLegend(counts: number[]): void {
  const items = counts.flatMap((n, c) => {
    if (c === 0 || n === 0) return [];
    const li = document.createElement('li');
    li.dataset.class = String(c);
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = `rgb(${classColour(c).join(', ')})`;
    li.append(sw, document.createTextNode(`class ${c}: ${n} voxels`));
    return [li];
  });
  const bg = document.createElement('li');
  bg.textContent = `class 0 (background, not drawn): ${counts[0]} voxels`;
  $('transunet-legend').replaceChildren(...items, bg);
}

/** The loaded ImageNet-21k encoder: the start option names it (with a warning where it is the full R50-ViT-B_16), and is chosen. */
function showTransunetEncoder(r: TransunetEncoderResult): void {
  if (!r.fromCache) setTiming('TransUNet encoder conversion', fmtMs(r.convertMs));
  const params = `${(r.parameters / 1e6).toFixed(r.parameters < 1e6 ? 3 : 1)} M parameters`;
  const slow = r.config === 'tiny' ? '' : ': far too slow on a CPU adapter such as SwiftShader, minutes a step; use a GPU';
  const option = $<HTMLSelectElement>('transunet-start').options[1];
  option.disabled = false;
  option.textContent = `ImageNet-21k encoder ${r.name} (${r.config}, ${r.imgSize} x ${r.imgSize})${slow && cpuAdapter ? ', far too slow on this CPU adapter' : ''}`;
  option.title = `TransUNet's ImageNet-21k encoder from ${r.name}: ${r.config} at ${r.imgSize} x ${r.imgSize}, ${params}${slow}`;
  // chosen for the user unless it is the full network on a CPU adapter, where a step takes minutes
  const start = $<HTMLSelectElement>('transunet-start');
  const chosen = r.config === 'tiny' || !cpuAdapter ? 'encoder' : 'random';
  // a new choice, or a new encoder chosen again, starts a new run (the run from an earlier encoder is not resumed)
  if (start.value !== chosen || chosen === 'encoder') {
    start.value = chosen;
    newTransunetRun();
  }
  setTransunetState(
    'encoder',
    `${r.fromCache ? 'loaded the cached conversion of' : 'converted and loaded'} ${r.name}: TransUNet's ImageNet-21k encoder (${r.config}, ${r.tensors} tensors, ${params}), no decoder or head, so it cannot segment yet; Train TransUNet here fine-tunes from it (decoder and head from random weights) once it is chosen under Start from${r.config === 'tiny' ? '' : `. R50-ViT-B_16 is far too slow on SwiftShader and other CPU adapters (minutes a step): there "random weights, tiny" stays chosen`}`,
  );
  updateButtons();
}

$<HTMLInputElement>('transunet-weights').onchange = async (e) => {
  const input = e.target as HTMLInputElement;
  const file = input.files?.[0];
  input.value = '';
  if (!file || !engine) return;
  transunetBusy = true;
  updateButtons();
  setTransunetState('loading', `loading ${file.name}…`);
  try {
    const r = await engine.request<TransunetLoadResult>('loadTransunetWeights', { file });
    if ('encoder' in r) showTransunetEncoder(r.encoder);
    else showTransunetWeights(r.model);
  } catch (err) {
    setTransunetState('error', transunetWeights ? `could not load ${file.name}; still using ${transunetWeights.name}` : `could not load ${file.name}`);
    showError(`could not load TransUNet weights from ${file.name}: ${message(err)}`, err);
  } finally {
    $<HTMLProgressElement>('transunet-progress').hidden = true;
    transunetBusy = false;
    updateButtons();
  }
};

/** A TransUNet segmentation in the page: the overlay, the legend, the times, and each class's Dice against the label. */
function showTransunetSegmentation(r: TransunetSegmentMsg, by: string): void {
  viewer.setMask('transunet', r.labels);
  updateInfo();
  showLegend(r.counts);
  setTiming('TransUNet segmentation', `${fmtMs(r.ms)} (${r.slices} slices, ${fmtMs(r.ms / r.slices)} a slice)`);
  showMemory(r.memory);
  const found = r.counts.filter((n, c) => c > 0 && n > 0).length;
  setTransunetState('done', `segmented ${r.slices} axial slices with ${by}: ${found} of ${r.numClasses - 1} foreground classes found (each class its colour; ids in the legend)`);
  const el = $('transunet-dice');
  el.dataset.segmentations = String(Number(el.dataset.segmentations ?? 0) + 1);
  const scored = (r.dice ?? []).flatMap((d, c) => (d === null ? [] : [[c, d] as const]));
  if (!scored.length) {
    el.textContent = '';
    delete el.dataset.dice;
    return;
  }
  const mean = scored.reduce((a, [, d]) => a + d, 0) / scored.length;
  el.dataset.dice = String(mean);
  el.textContent = scored.length === 1 ? `Dice against the label (class ${scored[0][0]}): ${mean.toFixed(3)}` : `mean Dice against the label over ${scored.length} classes: ${mean.toFixed(3)} (${scored.map(([c, d]) => `${c}: ${d.toFixed(3)}`).join(', ')})`;
}

$('transunet-segment').onclick = async () => {
  if (!engine || !scan || !transunetWeights) return;
  transunetBusy = true;
  updateButtons();
  setTransunetState('segmenting', 'TransUNet: segmenting the scan slice by slice…');
  const id = scanId;
  try {
    const r = await engine.request<TransunetSegmentMsg>('transunetSegment');
    if (id !== scanId) return;
    showTransunetSegmentation(r, transunetWeights.name);
  } catch (err) {
    setTransunetState('error', `TransUNet segmentation failed: ${message(err)}`);
    showError(`TransUNet segmentation failed: ${message(err)}`, err);
  } finally {
    $<HTMLProgressElement>('transunet-progress').hidden = true;
    transunetBusy = false;
    updateButtons();
  }
};

$('save-transunet').onclick = () => saveWeights('transunet', `transunet-${transunetWeights?.config ?? 'tiny'}-demo.safetensors`, 'TransUNet');

// a new start option: the next Train starts a new run from it
$<HTMLSelectElement>('transunet-start').onchange = () => newTransunetRun();

$('transunet-train').onclick = async () => {
  if (!engine || !scan || transunetBusy) return;
  const steps = Number($<HTMLInputElement>('transunet-steps').value);
  if (!(Number.isInteger(steps) && steps > 0)) return showError('steps must be a positive whole number');
  const from = $<HTMLSelectElement>('transunet-start').value as 'random' | 'encoder';
  // Resume finishes the interrupted run; otherwise `steps` more steps (the worker counts the total);
  // with no step charted yet, a new run (a new model from the chosen start)
  const target = tuResumeTarget ?? tuChart.points + steps;
  const fresh = tuResumeTarget === null && tuChart.points === 0;
  tuTraining = true;
  transunetBusy = true;
  updateButtons();
  setTransunetState('training', 'TransUNet: preparing the slices…');
  const id = scanId;
  try {
    const r = await engine.request<TransunetTrainResult>('transunetTrain', { steps: target, from, fresh });
    transunetWeights = r.model;
    if (id !== scanId) return;
    tuResumeTarget = r.stopped ? target : null;
    $('transunet-train').textContent = r.stopped ? 'Resume' : 'Train more';
    if (r.stopped) setTransunetState('stopped', `stopped after ${r.steps} step${r.steps === 1 ? '' : 's'}; Resume continues with the same weights and momentum, Segment with TransUNet uses them now`);
    if (r.segmentation) {
      showTransunetSegmentation(r.segmentation, `${r.model.name} (${r.steps} steps)`);
      setTransunetState('done', `trained ${r.steps} step${r.steps === 1 ? '' : 's'} (${r.model.config} at ${r.model.imgSize} x ${r.model.imgSize}, ${r.model.numClasses} classes) and segmented the scan slice by slice (trained on this label: the Dice checks the pipeline, not generalisation)`);
    }
  } catch (e) {
    setTransunetState('error', `TransUNet training failed: ${message(e)}`);
    showError(`TransUNet training failed: ${message(e)}`, e);
  } finally {
    $<HTMLProgressElement>('transunet-progress').hidden = true;
    tuTraining = false;
    transunetBusy = false;
    updateButtons();
  }
};
$('transunet-stop').onclick = () => void engine?.request('transunetStop').catch((e) => showError(message(e), e));

// ---- the console handle (used by the end-to-end test too): the worker's GPU memory now, and one
// buffer of a given size asked for from the GPU, which exercises the out-of-memory path for real ----
const debugHandle = {
  memory: async (): Promise<MemoryReport> => {
    if (!engine || !gpuReady) throw new Error('no WebGPU worker');
    const m = await engine.request<MemoryReport>('memory');
    showMemory(m);
    return m;
  },
  /** resolves with null when the buffer was made (and freed), else with the message shown in the page */
  allocate: async (bytes: number): Promise<string | null> => {
    if (!engine || !gpuReady) throw new Error('no WebGPU worker');
    try {
      await engine.request('allocate', { bytes });
      return null;
    } catch (e) {
      showError(`allocating ${fmtBytes(bytes)} failed: ${message(e)}`, e);
      return message(e);
    }
  },
};
(window as unknown as { medsegDebug: typeof debugHandle }).medsegDebug = debugHandle;

// ---- start ----
function credit(): void {
  const p = $('credit');
  p.replaceChildren();
  const t = (s: string) => p.append(document.createTextNode(s));
  t('Bundled scan: contrast CT crop around the spleen and its manual label, from the Medical Segmentation Decathlon, Task09_Spleen, case spleen_2 (Simpson et al. 2019, data from Memorial Sloan Kettering Cancer Center), cropped by the ivadomed project (data-testing); unmodified here. Licence: CC BY-SA 4.0 (');
  const a = document.createElement('a');
  a.href = attributionUrl;
  a.textContent = 'attribution and licence notice';
  a.target = '_blank';
  p.append(a);
  t('). medseg itself is Apache-2.0.');
}

async function start(): Promise<void> {
  credit();
  if (!hasWebGpu) {
    $('no-webgpu').hidden = false;
    $<HTMLInputElement>('profile-kernels').disabled = true;
    $('no-webgpu-detail').textContent = 'navigator.gpu is undefined in this browser.';
    $('adapter').textContent = 'no WebGPU';
  } else {
    engine = new Engine();
    engine.onEvent = (e) => {
      if (e.kind === 'step') {
        chart.add(e.step, e.loss, e.dice);
        stepTimes.push(e.ms);
        const mean = stepTimes.reduce((a, b) => a + b, 0) / stepTimes.length;
        setTiming('V-Net training step', `${fmtMs(e.ms)} (mean ${fmtMs(mean)} over ${stepTimes.length}; ${e.dispatches} GPU dispatches)`);
        showMemory(e.memory);
        setTrainState('training', `step ${e.step}/${e.total}: loss ${e.loss.toFixed(4)}, training Dice ${e.dice.toFixed(3)}`);
      } else if (e.kind === 'transunetStep') {
        tuChart.add(e.step, e.loss, e.dice);
        // each step's loss, in full, for the console and the end-to-end test
        const c = $('transunet-chart');
        c.dataset.losses = `${c.dataset.losses ? `${c.dataset.losses},` : ''}${e.loss}`;
        tuStepTimes.push(e.ms);
        const mean = tuStepTimes.reduce((a, b) => a + b, 0) / tuStepTimes.length;
        setTiming('TransUNet training step', `${fmtMs(e.ms)} (mean ${fmtMs(mean)} over ${tuStepTimes.length}; ${e.dispatches} GPU dispatches)`);
        showMemory(e.memory);
        setTransunetState('training', `step ${e.step}/${e.total}: loss ${e.loss.toFixed(4)} (CE ${e.ce.toFixed(3)}), soft Dice ${e.dice.toFixed(3)}, pixel accuracy ${e.accuracy.toFixed(3)}, lr ${e.lr.toPrecision(3)}`);
      } else if (e.kind === 'transunetModel') {
        transunetWeights = e.model;
        updateButtons();
      } else if (e.kind === 'medsamStep') {
        setMedsamState('training', `fine-tuning step ${e.step}/${e.total}: loss ${e.loss.toFixed(3)}, training Dice ${e.dice.toFixed(3)} (${fmtMs(e.ms)})`);
      } else if (e.kind === 'stage') {
        if (e.stage.startsWith('TransUNet')) {
          const bar = $<HTMLProgressElement>('transunet-progress');
          bar.hidden = false;
          bar.max = e.total ?? 1;
          bar.value = e.done ?? 0;
          setTransunetState(e.stage.includes('converting') ? 'loading' : tuTraining ? 'training' : 'segmenting', `${e.stage}${e.total ? ` ${e.done}/${e.total}` : ''}…`);
        } else if (e.stage.startsWith('converting')) setMedsamState('loading', `${e.stage}: tensor ${e.done}/${e.total}`);
        else if (e.stage.startsWith('MedSAM')) {
          $<HTMLProgressElement>('medsam-progress').value = e.done ?? 0;
          setMedsamState('running', `${e.stage}…`);
        } else setTrainState(training ? 'training' : 'segmenting', `${e.stage}${e.total ? ` ${e.done}/${e.total}` : ''}…`);
      } else if (e.kind === 'profile') showProfile(e);
      else if (e.kind === 'error') showError(e.message);
    };
  }
  const opened = openBundled();
  if (engine) {
    try {
      const r = await engine.request<InitResult>('init');
      gpuReady = true;
      const a = r.adapter;
      const lim = Object.entries(a.limits)
        .map(([k, v]) => `  ${k}: ${v >= 1 << 20 ? fmtBytes(v) : v}`)
        .join('\n');
      $('adapter').textContent = `${a.name}${a.kind === 'cpu' ? ' (a CPU adapter: expect seconds per step)' : ''}\nfeatures: ${a.features.join(', ') || 'none'}\nlimits:\n${lim}`;
      $('adapter').dataset.adapter = a.name;
      cpuAdapter = a.kind === 'cpu';
      $('adapter').dataset.maxBufferSize = String(a.limits.maxBufferSize);
      showMemory(r.memory);
      if (r.cacheError) showError(r.cacheError);
      await engine.request('setProfiling', { on: $<HTMLInputElement>('profile-kernels').checked });
      await opened;
      if (r.cachedWeights) showWeights(r.cachedWeights);
      if (r.cachedTransunetEncoder) showTransunetEncoder(r.cachedTransunetEncoder);
      if (r.cachedTransunet) showTransunetWeights(r.cachedTransunet);
      if (scan) await engine.request('setScan', { scan, label });
    } catch (e) {
      // navigator.gpu exists but gives no adapter (Chrome on Linux without its flag, a blocklisted GPU): the same notice
      $('adapter').textContent = `WebGPU failed: ${message(e)}`;
      $('no-webgpu').hidden = false;
      $<HTMLInputElement>('profile-kernels').disabled = true;
      $('no-webgpu-detail').textContent = message(e);
      showError(`WebGPU could not start: ${message(e)}`, e);
    }
  }
  await opened;
  updateButtons();
  document.body.dataset.ready = 'true';
}

void start();
