// Types of scripts/system.mjs for the TypeScript that imports it (vitest.config.ts, tests).
export type Need = 'vulkan' | 'swiftshader' | 'mesa' | 'chromium';
export interface Facts {
  platform: string;
  arch: string;
  os: { id: string; idLike: string[] };
  uid: number | null;
  sudo: 'passwordless' | 'interactive' | 'none';
  hasApt: boolean;
  gpuDevice: boolean;
  env: { MEDSEG_CHROMIUM?: string; MEDSEG_SWIFTSHADER_ICD?: string };
  playwrightChromium: string | null;
  exists(path: string): boolean;
}
export interface Plan {
  missing: Need[];
  commands: string[][];
  manual: string | null;
}
export const APT_PACKAGES: Record<Need, string[]>;
export function chromiumArgs(realGpu?: boolean): string[];
export function findChromium(f: Facts): { path: string; from: 'MEDSEG_CHROMIUM' | 'system' | 'playwright'; exists: boolean } | null;
export function findSwiftShaderIcd(f: Facts): string | null;
export function present(f: Facts): Record<Need, boolean>;
export function needs(f: Facts, purpose: 'test' | 'start'): Need[];
export function plan(f: Facts, purpose: 'test' | 'start'): Plan;
export function describe(f: Facts, purpose: 'test' | 'start'): string;
export function probe(options?: { root?: string; env?: Record<string, string | undefined> }): Facts;
export function runtimeEnv(f: Facts, env: Record<string, string | undefined>, options?: { preferLlvmpipe?: boolean }): Record<string, string>;
