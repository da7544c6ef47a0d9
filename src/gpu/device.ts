// Finds a WebGPU device: navigator.gpu in a browser, the `webgpu` package (Dawn) in Node.
// In Node, MEDSEG_ADAPTER=gpu|swiftshader|llvmpipe picks the adapter; unset, a real GPU is tried
// first and SwiftShader (from Debian's chromium package) is the announced fallback.

export type AdapterChoice = 'gpu' | 'swiftshader' | 'llvmpipe';

export const OPTIONAL_FEATURE_NAMES = ['timestamp-query', 'shader-f16', 'subgroups'] as const;

export interface DeviceInfo {
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string; backend: string };
  /** 'cpu' for software adapters (adapterKindOf) */
  kind: 'cpu' | 'gpu';
  limits: GPUSupportedLimits;
  features: Set<string>;
  /** what the adapter offers (features holds what the device was opened with) */
  adapterFeatures: Set<string>;
}

const OPTIONAL_FEATURES = [...OPTIONAL_FEATURE_NAMES] as GPUFeatureName[];

/** Chosen over the built-in locations with MEDSEG_SWIFTSHADER_ICD. */
const SWIFTSHADER_ICDS = ['/usr/lib/chromium/vk_swiftshader_icd.json', '/usr/lib/chromium-browser/vk_swiftshader_icd.json'];

const INSTALL_HINT =
  'medseg needs WebGPU. In a browser: a recent Chrome/Edge (or Firefox/Safari with WebGPU enabled) on a page ' +
  'served from https or http://localhost. In Node: `npm install webgpu`; without a GPU driver install ' +
  "Debian's `chromium` and `libvulkan1` packages (for SwiftShader) or `libegl1 libegl-dev libegl-mesa0 libgl1-mesa-dri` " +
  '(for MEDSEG_ADAPTER=llvmpipe).';

// Dawn crashes later inside ProcessEvents if the object create() returns is collected: keep them all.
const dawnInstances: unknown[] = [];

/**
 * The one adapter classification every kernel choice uses: a CPU adapter is one the browser or Dawn
 * marks as a fallback adapter, or a known software rasteriser by name (SwiftShader, llvmpipe,
 * lavapipe, softpipe, WARP, Microsoft Basic Render).
 */
export function adapterKindOf(info: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean }): 'cpu' | 'gpu' {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return info.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe|softpipe|\bwarp\b|basic render/.test(text) ? 'cpu' : 'gpu';
}

function isCpuAdapter(a: GPUAdapter): boolean {
  return adapterKindOf(a.info) === 'cpu';
}

async function requestDevice(adapter: GPUAdapter, backend: string): Promise<DeviceInfo> {
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of [
    'maxBufferSize',
    'maxStorageBufferBindingSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupSizeZ',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
  ]) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const i = adapter.info;
  return {
    device,
    adapterInfo: { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, backend },
    kind: adapterKindOf(i),
    limits: device.limits,
    features: new Set([...device.features].map(String)),
    adapterFeatures: new Set([...adapter.features].map(String)),
  };
}

async function browserDevice(): Promise<DeviceInfo> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new Error(`No WebGPU in this browser (navigator.gpu is undefined). ${INSTALL_HINT}`);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(`navigator.gpu.requestAdapter() returned null: WebGPU is disabled or unsupported here. ${INSTALL_HINT}`);
  return requestDevice(adapter, 'browser');
}

async function nodeDevice(choice: AdapterChoice | undefined): Promise<DeviceInfo> {
  let dawn: { create(flags: string[]): GPU; globals: Record<string, unknown> };
  try {
    const name = 'webgpu';
    dawn = await import(/* @vite-ignore */ name);
  } catch (e) {
    throw new Error(`Could not load the 'webgpu' package (Dawn for Node): ${(e as Error).message}. ${INSTALL_HINT}`);
  }
  Object.assign(globalThis, dawn.globals);
  const open = async (flags: string[], options?: GPURequestAdapterOptions) => {
    const gpu = dawn.create(flags);
    dawnInstances.push(gpu);
    return gpu.requestAdapter(options);
  };
  const env = process.env;

  const swiftshader = async () => {
    const icd = [env.MEDSEG_SWIFTSHADER_ICD, ...SWIFTSHADER_ICDS].find((p) => p && existsSync(p));
    if (!icd) throw new Error(`SwiftShader's Vulkan driver was not found (looked for ${SWIFTSHADER_ICDS.join(', ')}). ${INSTALL_HINT}`);
    env.VK_ICD_FILENAMES = icd; // read by the Vulkan loader when Dawn creates its instance
    const adapter = await open(['backend=vulkan']);
    if (!adapter) throw new Error(`Dawn found no adapter with SwiftShader (${icd}); is libvulkan1 installed? ${INSTALL_HINT}`);
    return requestDevice(adapter, 'vulkan (swiftshader)');
  };
  const llvmpipe = async () => {
    env.EGL_PLATFORM ??= 'surfaceless';
    const adapter = await open(['backend=opengl'], { featureLevel: 'compatibility' } as GPURequestAdapterOptions);
    if (!adapter) throw new Error(`Dawn found no OpenGL adapter for llvmpipe. ${INSTALL_HINT}`);
    return requestDevice(adapter, 'opengl (llvmpipe)');
  };

  if (choice === 'swiftshader') return swiftshader();
  if (choice === 'llvmpipe') return llvmpipe();
  const adapter = await open([], { powerPreference: 'high-performance' });
  if (adapter && (choice === 'gpu' || !isCpuAdapter(adapter))) return requestDevice(adapter, 'native');
  if (choice === 'gpu') throw new Error(`MEDSEG_ADAPTER=gpu but Dawn found no GPU adapter (no working Vulkan/Metal/D3D12 driver).`);
  console.warn('medseg: no GPU adapter found; falling back to SwiftShader (CPU). Set MEDSEG_ADAPTER to choose.');
  return swiftshader();
}

function existsSync(path: string): boolean {
  const fs = (globalThis as { process?: { getBuiltinModule?: (n: string) => unknown } }).process?.getBuiltinModule?.('node:fs') as
    | { existsSync(p: string): boolean }
    | undefined;
  return fs ? fs.existsSync(path) : false;
}

export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string' && typeof (globalThis as { window?: unknown }).window === 'undefined';
}

/** Opens a device once per call. `choice` overrides MEDSEG_ADAPTER (Node only). */
export async function openDevice(choice?: AdapterChoice): Promise<DeviceInfo> {
  if (!isNode()) return browserDevice();
  const fromEnv = process.env.MEDSEG_ADAPTER as AdapterChoice | undefined;
  const picked = choice ?? (fromEnv || undefined);
  if (picked && !['gpu', 'swiftshader', 'llvmpipe'].includes(picked)) {
    throw new Error(`MEDSEG_ADAPTER must be gpu, swiftshader or llvmpipe, got '${picked}'`);
  }
  return nodeDevice(picked);
}
