// The decisions of scripts/setup.mjs and scripts/system.mjs on made-up machines (the probes are
// replaced by facts, the install commands by a recorder): nothing is run when everything is there,
// apt-get installs exactly what is missing as root or through sudo, and without either (or off
// Debian and Ubuntu, or on macOS) one line says what to install.
import { describe, expect, it } from 'vitest';
import { ensure } from '../scripts/setup.mjs';
import { findChromium, findSwiftShaderIcd, plan, runtimeEnv, type Facts } from '../scripts/system.mjs';

const LIB = '/usr/lib/x86_64-linux-gnu';
const ALL = ['/usr/bin/chromium', '/usr/lib/chromium/vk_swiftshader_icd.json', `${LIB}/libvulkan.so.1`, `${LIB}/libEGL.so`, `${LIB}/libEGL_mesa.so.0`, `${LIB}/dri/swrast_dri.so`];
const MESA = ['libegl1', 'libegl-dev', 'libegl-mesa0', 'libgl1-mesa-dri'];

function machine(files: string[], over: Partial<Facts> = {}): Facts {
  const set = new Set(files);
  return { platform: 'linux', arch: 'x64', os: { id: 'debian', idLike: [] }, uid: 0, sudo: 'none', hasApt: true, gpuDevice: false, env: {}, playwrightChromium: null, exists: (p) => set.has(p), ...over };
}

/** ensure() on a machine whose files appear once the recorded apt-get install has run. */
function runEnsure(purpose: 'test' | 'start', before: string[], over: Partial<Facts> = {}, after = ALL) {
  const commands: string[][] = [];
  let installed = false;
  const result = ensure(purpose, {
    probeFn: () => machine(installed ? after : before, over),
    exec: (argv) => {
      commands.push(argv);
      if (argv.includes('install')) installed = true;
    },
    log: () => {},
  });
  return { ...result, commands };
}

describe('setup: everything present', () => {
  it('runs nothing and reports what it found', () => {
    const r = runEnsure('test', ALL);
    expect(r.ok).toBe(true);
    expect(r.commands).toEqual([]);
    expect(r.line).toBe('medseg setup (test): vulkan: ok, swiftshader: /usr/lib/chromium/vk_swiftshader_icd.json, mesa: ok, chromium: /usr/bin/chromium');
  });
  it('npm start needs no browser: the loader and Mesa, or only the loader with a GPU device', () => {
    const noBrowser = ALL.filter((p) => !p.includes('chromium'));
    expect(runEnsure('start', noBrowser).commands).toEqual([]);
    expect(runEnsure('start', [`${LIB}/libvulkan.so.1`], { gpuDevice: true }).commands).toEqual([]);
    expect(runEnsure('start', [`${LIB}/libvulkan.so.1`]).commands.at(-1)?.slice(-MESA.length)).toEqual(MESA);
  });
  it('finds a Chromium in MEDSEG_CHROMIUM or Playwright, and SwiftShader beside it', () => {
    const pw = '/root/.cache/ms-playwright/chromium-1200/chrome-linux/chrome';
    const f = machine([pw, '/root/.cache/ms-playwright/chromium-1200/chrome-linux/vk_swiftshader_icd.json'], { playwrightChromium: pw });
    expect(findChromium(f)).toEqual({ path: pw, from: 'playwright', exists: true });
    expect(findSwiftShaderIcd(f)).toBe('/root/.cache/ms-playwright/chromium-1200/chrome-linux/vk_swiftshader_icd.json');
    expect(runtimeEnv(f, {})).toMatchObject({ MEDSEG_SWIFTSHADER_ICD: '/root/.cache/ms-playwright/chromium-1200/chrome-linux/vk_swiftshader_icd.json' });
    const mine = machine(['/opt/chrome/chrome', ...ALL], { env: { MEDSEG_CHROMIUM: '/opt/chrome/chrome' } });
    expect(findChromium(mine)?.path).toBe('/opt/chrome/chrome');
  });
});

describe('setup: parts missing', () => {
  it('as root on Debian: apt-get update, then installs exactly the missing packages', () => {
    const r = runEnsure('test', ALL.filter((p) => !p.includes('chromium') && !p.includes('EGL_mesa')));
    expect(r.ok).toBe(true);
    expect(r.commands).toEqual([
      ['apt-get', 'update', '-qq'],
      ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', 'chromium', ...MESA],
    ]);
  });
  it('with sudo: the same through sudo', () => {
    const r = runEnsure('test', [], { uid: 1000, sudo: 'passwordless' });
    expect(r.commands.map((c) => c[0])).toEqual(['sudo', 'sudo']);
    expect(r.commands[1].slice(-(2 + MESA.length))).toEqual(['libvulkan1', 'chromium', ...MESA]);
  });
  it('without root and sudo: nothing runs, one line says what to run as root', () => {
    const r = runEnsure('test', ALL.filter((p) => !p.includes('libvulkan')), { uid: 1000, sudo: 'none' });
    expect(r.ok).toBe(false);
    expect(r.commands).toEqual([]);
    expect(r.line).toBe('medseg: cannot run the tests: missing vulkan; as root run: apt-get update && apt-get install -y libvulkan1');
    expect(r.line).not.toMatch(/\n/);
  });
  it('an install that does not provide the part still fails, in one line', () => {
    const r = runEnsure('test', [], {}, []);
    expect(r.ok).toBe(false);
    expect(r.commands).toHaveLength(2);
    expect(r.line).toMatch(/^medseg: cannot run the tests: missing vulkan, swiftshader, mesa, chromium; /);
  });
  it('Ubuntu: libraries from apt, the browser from Playwright (its chromium package is a snap)', () => {
    const p = plan(machine([], { os: { id: 'ubuntu', idLike: ['debian'] } }), 'test');
    expect(p.commands).toEqual([
      ['apt-get', 'update', '-qq'],
      ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', 'libvulkan1', ...MESA],
      ['npx', 'playwright', 'install', '--with-deps', 'chromium'],
    ]);
  });
  it('elsewhere: macOS needs only a browser, other Linux gets a list; MEDSEG_CHROMIUM pointing nowhere is named', () => {
    const mac = plan(machine([], { platform: 'darwin', gpuDevice: true }), 'test');
    expect(mac.missing).toEqual(['chromium']);
    expect(mac.commands).toEqual([]);
    expect(mac.manual).toMatch(/Chrome.*MEDSEG_CHROMIUM/);
    expect(plan(machine([], { platform: 'darwin' }), 'start').missing).toEqual([]);
    const fedora = plan(machine([], { os: { id: 'fedora', idLike: [] }, hasApt: false }), 'test');
    expect(fedora.commands).toEqual([]);
    expect(fedora.manual).toMatch(/^install the Vulkan loader .* with your package manager/);
    const wrong = plan(machine(ALL, { env: { MEDSEG_CHROMIUM: '/nope/chrome' } }), 'test');
    expect(wrong.missing).toEqual(['chromium']);
    expect(wrong.commands).toEqual([]);
    expect(wrong.manual).toMatch(/^MEDSEG_CHROMIUM=\/nope\/chrome does not exist/);
  });
});
