// The registry of kernel variants: every op family with more than one kernel (matmul, conv,
// attention, norm) registers its variants here once — a name, what it is, where it applies, the
// override constants it sets — and the family's default choice rule, which sees the problem and the
// adapter's kind (one classification, `adapterKind()`, for every family). Tests and benchmarks force
// a variant with setKernelVariant(family, name | null); the benchmark lists variants from here.
// A tuned table (src/gpu/tune.ts: measured choices per adapter and shape class) is consulted before
// the default rule; recordPicks lets a benchmark see which variant each launch got and why.
// This module knows no op: the families live in src/ops and register themselves on import.
import { runtime } from './runtime.js';
import type { Overrides } from './kernels.js';
import { tunedChoice } from './tune-table.js';

/** CPU adapters (SwiftShader, llvmpipe, ...) pay far more per memory load and per barrier than GPUs. */
export type AdapterKind = 'cpu' | 'gpu';

export interface KernelVariant<P> {
  name: string;
  /** one line: what the variant does and what it is for */
  description: string;
  /** whether it can run problem p (default: always) */
  applies?: (p: P) => boolean;
  /** the override constants it sets for p */
  overrides?: (p: P, params: VariantParams) => Overrides;
  /**
   * false: a tuned table never picks it for a whole shape class, because the class does not bound
   * what it needs (it is still timed and listed); default true.
   */
  classWide?: boolean;
}

/** Extra knobs a forced variant may carry (e.g. a chunk length for tests), by name. */
export type VariantParams = Readonly<Record<string, number>>;

export interface KernelFamilySpec<P> {
  family: string;
  variants: KernelVariant<P>[];
  /** the default rule: a variant name for p on this kind of adapter (must apply to p) */
  choose: (p: P, adapter: AdapterKind) => string;
  /**
   * The shape class of p (tune-classes.ts has the GEMM and head-dim ones): problems of one class
   * share a tuned choice; absent, the family is not tuned. Classes must be coarse (a few per
   * model) so that tuning measures each once.
   */
  shapeClass?: (p: P) => string;
}

/** Why a variant was picked: forced by setKernelVariant, from the tuned table, or the default rule. */
export type PickSource = 'forced' | 'tuned' | 'rule';

/** One pick as recordPicks saw it. */
export interface PickRecord {
  family: string;
  variant: string;
  source: PickSource;
  /** the family's shape class of the problem ('' for families without one) */
  shapeClass: string;
  /** the variants that could have run the problem */
  applicable: string[];
  problem: unknown;
}

export interface Choice<P> {
  variant: KernelVariant<P>;
  overrides: Overrides;
  params: VariantParams;
  /** 'forced' when setKernelVariant chose it */
  source: PickSource;
}

interface Forced {
  name: string;
  params: VariantParams;
}

const families = new Map<string, KernelFamily<never>>();
const forced = new Map<string, Forced>();
let recorders: PickRecord[][] = [];

export class KernelFamily<P> {
  private readonly spec: KernelFamilySpec<P>;
  constructor(spec: KernelFamilySpec<P>) {
    this.spec = spec;
  }

  get name(): string {
    return this.spec.family;
  }
  get variants(): readonly KernelVariant<P>[] {
    return this.spec.variants;
  }

  /** The variant for p: the forced one where it applies, else the tuned table's, else the default rule's. */
  pick(p: P): Choice<P> {
    const c = this.choose(p);
    if (recorders.length) {
      const rec: PickRecord = { family: this.name, variant: c.variant.name, source: c.source, shapeClass: this.shapeClass(p), applicable: this.applicable(p).map((v) => v.name), problem: p };
      for (const r of recorders) r.push(rec);
    }
    return c;
  }

  private choose(p: P): Choice<P> {
    const f = forced.get(this.spec.family);
    const fv = f ? this.variant(f.name) : null;
    if (f && fv && (fv.applies?.(p) ?? true)) return { variant: fv, overrides: fv.overrides?.(p, f.params) ?? {}, params: f.params, source: 'forced' };
    const tv = this.tunedFor(p);
    if (tv) return { variant: tv, overrides: tv.overrides?.(p, {}) ?? {}, params: {}, source: 'tuned' };
    const v = this.variant(this.spec.choose(p, adapterKind()));
    if (!v) throw new Error(`internal: ${this.spec.family}'s default rule chose an unknown variant`);
    return { variant: v, overrides: v.overrides?.(p, {}) ?? {}, params: {}, source: 'rule' };
  }

  /** The tuned table's variant for p's shape class, where the table has one that applies to p. */
  private tunedFor(p: P): KernelVariant<P> | undefined {
    if (!this.spec.shapeClass) return undefined;
    const name = tunedChoice(this.spec.family, this.spec.shapeClass(p));
    const v = name ? this.variant(name) : undefined;
    return v && (v.applies?.(p) ?? true) ? v : undefined;
  }

  /** p's shape class ('' where the family is not tuned). */
  shapeClass(p: P): string {
    return this.spec.shapeClass?.(p) ?? '';
  }

  /** Whether the family has shape classes (the tuner measures only those). */
  get tunable(): boolean {
    return !!this.spec.shapeClass;
  }

  /** The name the default rule picks for p, ignoring setKernelVariant and the tuned table. */
  defaultFor(p: P): string {
    return this.spec.choose(p, adapterKind());
  }

  /** The variants that can run p. */
  applicable(p: P): KernelVariant<P>[] {
    return this.spec.variants.filter((v) => v.applies?.(p) ?? true);
  }

  private variant(name: string): KernelVariant<P> | undefined {
    return this.spec.variants.find((v) => v.name === name);
  }
}

/** Registers a family (once, from its op file) and returns its handle. */
export function registerKernelFamily<P>(spec: KernelFamilySpec<P>): KernelFamily<P> {
  if (families.has(spec.family)) throw new Error(`internal: kernel family '${spec.family}' registered twice`);
  const f = new KernelFamily(spec);
  families.set(spec.family, f as unknown as KernelFamily<never>);
  return f;
}

/**
 * Forces `name` for every problem of `family` it applies to (others keep the default rule); null
 * restores the default. `params` are the variant's knobs (see its description).
 */
export function setKernelVariant(family: string, name: string | null, params: VariantParams = {}): void {
  const f = families.get(family);
  if (!f) throw new Error(`setKernelVariant: unknown kernel family '${family}' (known: ${[...families.keys()].join(', ')})`);
  if (name === null) {
    forced.delete(family);
    return;
  }
  if (!f.variants.some((v) => v.name === name)) {
    throw new Error(`setKernelVariant: '${family}' has no variant '${name}' (it has ${f.variants.map((v) => v.name).join(', ')})`);
  }
  forced.set(family, { name, params });
}

/** The variant setKernelVariant forces for `family`, or null. */
export function forcedVariant(family: string): string | null {
  return forced.get(family)?.name ?? null;
}

/**
 * Runs fn and returns every pick the registry made meanwhile (each launch's family, variant, source
 * and shape class), with fn's result. Ops pick while they encode, so a synchronous fn that
 * encodes the work sees every pick (no GPU sync needed).
 */
export function recordPicks<T>(fn: () => T): { result: T; picks: PickRecord[] } {
  const picks: PickRecord[] = [];
  recorders.push(picks);
  try {
    return { result: fn(), picks };
  } finally {
    recorders = recorders.filter((r) => r !== picks);
  }
}

/** The registered families (for benchmarks and listings). */
export function kernelFamilies(): KernelFamily<unknown>[] {
  return [...families.values()] as KernelFamily<unknown>[];
}

export function kernelFamily(family: string): KernelFamily<unknown> {
  const f = families.get(family);
  if (!f) throw new Error(`unknown kernel family '${family}' (known: ${[...families.keys()].join(', ')})`);
  return f as KernelFamily<unknown>;
}

/** The open runtime's adapter kind. */
export function adapterKind(): AdapterKind {
  return runtime().adapterKind;
}
