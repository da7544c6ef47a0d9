// What medseg needs from the system outside npm, where it is found, and how to install what is
// missing. Used by scripts/setup.mjs (npm start, npm test, .ci/run), by vitest.config.ts (which
// Chromium the browser tests launch, and with which flags) and by test/package.node.test.ts.
// The decisions are pure functions of a `facts` object (probe() fills it from the machine), so
// test/setup.node.test.ts checks them with made-up machines.
//
// Needs, on Linux:
//   vulkan      the Vulkan loader (libvulkan.so.1), which Dawn opens for GPUs and SwiftShader;
//   swiftshader SwiftShader's Vulkan driver, Node's software adapter without a GPU (Debian's
//               chromium ships it; so does Playwright's Chromium build);
//   mesa        Mesa's EGL and llvmpipe (libEGL.so, libEGL_mesa.so.0, swrast_dri.so), the other
//               software adapter (MEDSEG_ADAPTER=llvmpipe; the llvmpipe test project). Dawn opens
//               the unversioned libEGL.so, which only libegl-dev provides (libegl1 has .so.1).
//   chromium    a Chromium for the browser tests (MEDSEG_CHROMIUM, /usr/bin/chromium or Playwright's).
// `npm test` needs all four; `npm start` needs the loader and, where no GPU device exists, Mesa
// (it runs on llvmpipe there, the faster CPU adapter for its convolutions). On macOS and Windows
// Dawn uses Metal / D3D12 and only the browser tests need something: a Chromium or Chrome.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Chromium flags of the browser tests: WebGPU on SwiftShader, or on the GPU with realGpu. */
export function chromiumArgs(realGpu = false) {
  const common = ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
  const gpu = realGpu ? ['--enable-features=Vulkan,VulkanFromANGLE', '--use-angle=vulkan', '--ignore-gpu-blocklist'] : ['--use-webgpu-adapter=swiftshader'];
  return [...common, ...gpu];
}

const MULTIARCH = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf', ppc64: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu', riscv64: 'riscv64-linux-gnu' };
const libDirs = (arch) => [`/usr/lib/${MULTIARCH[arch] ?? `${arch}-linux-gnu`}`, '/usr/lib64', '/usr/lib', `/lib/${MULTIARCH[arch] ?? arch}`];

const SYSTEM_CHROMIUM = {
  linux: ['/usr/bin/chromium'],
  darwin: ['/Applications/Chromium.app/Contents/MacOS/Chromium', '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome'],
  win32: ['C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe', 'C:\\Program Files (x86)\\Google\\Chrome\\Application\\chrome.exe'],
};

/** Debian's package for each need; Mesa is four packages. */
export const APT_PACKAGES = { vulkan: ['libvulkan1'], swiftshader: ['chromium'], mesa: ['libegl1', 'libegl-dev', 'libegl-mesa0', 'libgl1-mesa-dri'], chromium: ['chromium'] };
const WHAT = {
  vulkan: 'the Vulkan loader (libvulkan.so.1)',
  swiftshader: "SwiftShader's Vulkan driver (vk_swiftshader_icd.json, from Chromium)",
  mesa: "Mesa's EGL and llvmpipe (libEGL.so, libEGL_mesa.so.0, swrast_dri.so)",
  chromium: 'a Chromium for the browser tests',
};

/** The Chromium the browser tests launch: { path, from } or null. MEDSEG_CHROMIUM wins (even if missing: then path exists false). */
export function findChromium(f) {
  if (f.env.MEDSEG_CHROMIUM) return { path: f.env.MEDSEG_CHROMIUM, from: 'MEDSEG_CHROMIUM', exists: f.exists(f.env.MEDSEG_CHROMIUM) };
  for (const p of SYSTEM_CHROMIUM[f.platform] ?? []) if (f.exists(p)) return { path: p, from: 'system', exists: true };
  if (f.playwrightChromium && f.exists(f.playwrightChromium)) return { path: f.playwrightChromium, from: 'playwright', exists: true };
  return null;
}

/** SwiftShader's ICD file: MEDSEG_SWIFTSHADER_ICD, Debian's/Ubuntu's chromium, or beside the Chromium found. */
export function findSwiftShaderIcd(f) {
  const chromium = findChromium(f);
  const candidates = [f.env.MEDSEG_SWIFTSHADER_ICD, '/usr/lib/chromium/vk_swiftshader_icd.json', '/usr/lib/chromium-browser/vk_swiftshader_icd.json', chromium?.exists ? join(dirname(chromium.path), 'vk_swiftshader_icd.json') : undefined];
  return candidates.find((p) => p && f.exists(p)) ?? null;
}

const findLib = (f, names) => names.every((n) => libDirs(f.arch).some((d) => f.exists(join(d, n))));

/** Whether each need is met on this machine (Linux names; elsewhere only chromium is checked). */
export function present(f) {
  return {
    vulkan: findLib(f, ['libvulkan.so.1']),
    swiftshader: findSwiftShaderIcd(f) !== null,
    mesa: findLib(f, ['libEGL.so', 'libEGL_mesa.so.0', 'dri/swrast_dri.so']),
    chromium: findChromium(f)?.exists === true,
  };
}

/** The needs of `purpose` ('test' or 'start') on this machine. */
export function needs(f, purpose) {
  if (f.platform !== 'linux') return purpose === 'test' ? ['chromium'] : [];
  if (purpose === 'test') return ['vulkan', 'swiftshader', 'mesa', 'chromium'];
  return f.gpuDevice ? ['vulkan'] : ['vulkan', 'mesa'];
}

/**
 * What to do: { missing, commands, manual }. `commands` (argv arrays) install what is missing where
 * this machine can (Linux with apt-get, as root or through sudo); `manual` is the one line telling
 * the user what to install where it cannot (null when nothing is missing or commands cover it).
 */
export function plan(f, purpose) {
  const have = present(f);
  const missing = needs(f, purpose).filter((n) => !have[n]);
  if (missing.length === 0) return { missing, commands: [], manual: null };
  const chromiumEnv = f.env.MEDSEG_CHROMIUM && missing.includes('chromium') ? `MEDSEG_CHROMIUM=${f.env.MEDSEG_CHROMIUM} does not exist; ` : '';
  if (f.platform !== 'linux') {
    return { missing, commands: [], manual: `${chromiumEnv}install Chromium or Google Chrome (or run \`npx playwright install chromium\`), or set MEDSEG_CHROMIUM to a Chromium binary` };
  }
  // Ubuntu's chromium package is a snap stub: the browser comes from Playwright there
  const ubuntu = f.os.id === 'ubuntu' || f.os.idLike.includes('ubuntu');
  const debian = ubuntu || f.os.id === 'debian' || f.os.idLike.includes('debian');
  const browserFromPlaywright = ubuntu && (missing.includes('chromium') || missing.includes('swiftshader'));
  const aptNeeds = missing.filter((n) => !(browserFromPlaywright && (n === 'chromium' || n === 'swiftshader')));
  const packages = [...new Set(aptNeeds.flatMap((n) => APT_PACKAGES[n]))];
  if (chromiumEnv) {
    return { missing, commands: [], manual: `${chromiumEnv}point it at a Chromium binary or unset it` };
  }
  const aptLine = packages.length ? `apt-get install -y ${packages.join(' ')}` : '';
  const pwLine = browserFromPlaywright ? 'npx playwright install --with-deps chromium' : '';
  if (!debian || !f.hasApt) {
    return { missing, commands: [], manual: `install ${missing.map((n) => WHAT[n]).join(', ')} with your package manager${missing.includes('chromium') ? ' (or set MEDSEG_CHROMIUM)' : ''}` };
  }
  const prefix = f.uid === 0 ? [] : f.sudo !== 'none' ? ['sudo'] : null;
  if (prefix === null) {
    return { missing, commands: [], manual: `as root run: ${[aptLine && `apt-get update && ${aptLine}`, pwLine].filter(Boolean).join(' && ')}` };
  }
  const commands = [];
  if (packages.length) {
    commands.push([...prefix, 'apt-get', 'update', '-qq']);
    commands.push([...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', ...packages]);
  }
  if (browserFromPlaywright) commands.push(['npx', 'playwright', 'install', '--with-deps', 'chromium']);
  return { missing, commands, manual: null };
}

/** A one-line account of what was found, for the setup's output. */
export function describe(f, purpose) {
  const have = present(f);
  const chromium = findChromium(f);
  const parts = needs(f, purpose).map((n) => {
    if (!have[n]) return `${n}: missing`;
    if (n === 'chromium') return `chromium: ${chromium.path}`;
    if (n === 'swiftshader') return `swiftshader: ${findSwiftShaderIcd(f)}`;
    return `${n}: ok`;
  });
  return parts.length ? parts.join(', ') : 'nothing needed';
}

function osRelease(exists) {
  try {
    if (!exists('/etc/os-release')) return { id: '', idLike: [] };
    const kv = Object.fromEntries(
      readFileSync('/etc/os-release', 'utf8')
        .split('\n')
        .map((l) => l.match(/^([A-Z_]+)=(.*)$/))
        .filter(Boolean)
        .map((m) => [m[1], m[2].replace(/^"|"$/g, '')]),
    );
    return { id: kv.ID ?? '', idLike: (kv.ID_LIKE ?? '').split(/\s+/).filter(Boolean) };
  } catch {
    return { id: '', idLike: [] };
  }
}

const runs = (cmd, args) => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
};

/** Playwright's own Chromium build, if Playwright is installed and has downloaded it. */
function playwrightChromium(root) {
  try {
    const require = createRequire(join(root, 'package.json'));
    const p = require('playwright').chromium.executablePath();
    return p && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

/** A GPU device node the GPU drivers open (NVIDIA's or a DRM render node); no node, no GPU for Dawn. */
function gpuDevice(exists) {
  if (exists('/dev/nvidiactl')) return true;
  try {
    return readdirSync('/dev/dri').some((n) => n.startsWith('renderD'));
  } catch {
    return false;
  }
}

/** The facts of this machine. */
export function probe({ root = process.cwd(), env = process.env } = {}) {
  const exists = (p) => existsSync(p);
  const linux = process.platform === 'linux';
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  const sudo = !linux || uid === 0 ? 'none' : runs('sudo', ['-n', 'true']) ? 'passwordless' : process.stdin.isTTY && runs('sh', ['-c', 'command -v sudo']) ? 'interactive' : 'none';
  return {
    platform: process.platform,
    arch: process.arch,
    os: linux ? osRelease(exists) : { id: '', idLike: [] },
    uid,
    sudo,
    hasApt: linux && exists('/usr/bin/apt-get'),
    gpuDevice: linux ? gpuDevice(exists) : true,
    env: { MEDSEG_CHROMIUM: env.MEDSEG_CHROMIUM, MEDSEG_SWIFTSHADER_ICD: env.MEDSEG_SWIFTSHADER_ICD },
    playwrightChromium: playwrightChromium(root),
    exists,
  };
}

/**
 * Environment for the processes that use the GPU: XDG_RUNTIME_DIR where it is unset (Mesa and
 * Chromium complain without one), MEDSEG_SWIFTSHADER_ICD where SwiftShader is found only beside a
 * Playwright Chromium, and with `preferLlvmpipe` (npm start on a machine with no GPU device and no
 * MEDSEG_ADAPTER) MEDSEG_ADAPTER=llvmpipe. Returns the variables to add.
 */
export function runtimeEnv(f, env, { preferLlvmpipe = false } = {}) {
  const add = {};
  if (f.platform === 'linux' && !env.XDG_RUNTIME_DIR) add.XDG_RUNTIME_DIR = `/tmp/xdg-runtime-${f.uid ?? 0}`;
  const icd = findSwiftShaderIcd(f);
  if (icd && !env.MEDSEG_SWIFTSHADER_ICD && !icd.startsWith('/usr/lib/chromium')) add.MEDSEG_SWIFTSHADER_ICD = icd;
  if (preferLlvmpipe && f.platform === 'linux' && !f.gpuDevice && !env.MEDSEG_ADAPTER && present(f).mesa) {
    add.MEDSEG_ADAPTER = 'llvmpipe';
    add.EGL_PLATFORM = env.EGL_PLATFORM ?? 'surfaceless';
  }
  return add;
}
