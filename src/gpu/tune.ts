// The autotuner on the kernel-variant registry: for a tunable family (one with shape classes:
// matmul, conv, attention) it runs each workload once with the default choice to see which shape
// classes its launches fall in, then times it with every applicable variant forced, and keeps per
// shape class the variant with the least summed time over the workloads of that class. The timer is
// injected (the benchmark's median-of-runs timer; tests pass a fake one), so the choice is exactly
// "the fastest by this timer". Tables are per adapter: useTunedTable refuses a table measured on
// another adapter. In the browser a table persists in localStorage; in Node the benchmark keeps it
// in a JSON file (kernels-bench/tune-cache.ts).
import { runtime } from './runtime.js';
import { activeTunedTable, setActiveTunedTable, type TunedEntry, type TunedTable } from './tune-table.js';
import { forcedVariant, kernelFamily, recordPicks, setKernelVariant } from './variants.js';

export type { TunedEntry, TunedTable } from './tune-table.js';
export { activeTunedTable } from './tune-table.js';

/** One thing to time: `run` encodes one call of the op (and frees what it made). */
export interface TuneWorkload {
  label: string;
  run: () => void;
  /** variants not to time on this workload (e.g. one that would not fit in memory) */
  exclude?: readonly string[];
}

/** Seconds per run of `run` (it may call run as often as it likes, and must wait for the GPU). */
export type TuneTimer = (run: () => void) => Promise<number>;

/** The key tables are filed under: 'llvmpipe', 'swiftshader', or a slug of the adapter's name. */
export function adapterKey(adapterName: string = runtime().adapterName): string {
  if (/llvmpipe/i.test(adapterName)) return 'llvmpipe';
  if (/swiftshader/i.test(adapterName)) return 'swiftshader';
  return adapterName.toLowerCase().replace(/\[[^\]]*\]/g, '').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 64) || 'unknown';
}

/** Checks a parsed JSON table; throws naming what is wrong. */
export function parseTunedTable(v: unknown, where = 'tuned table'): TunedTable {
  const bad = (m: string): never => {
    throw new Error(`${where}: ${m}`);
  };
  if (!v || typeof v !== 'object') bad('not an object');
  const t = v as TunedTable;
  if (t.version !== 1) bad(`version ${JSON.stringify(t.version)} (this build reads version 1)`);
  if (typeof t.adapter !== 'string' || !t.adapter) bad('no adapter key');
  if (!t.families || typeof t.families !== 'object') bad('no families');
  for (const [family, classes] of Object.entries(t.families)) {
    const f = kernelFamily(family);
    for (const [cls, e] of Object.entries(classes)) {
      if (!e || typeof e.variant !== 'string') bad(`${family} ${cls}: no variant`);
      if (!f.variants.some((x) => x.name === e.variant)) bad(`${family} ${cls}: unknown variant '${e.variant}' (the family has ${f.variants.map((x) => x.name).join(', ')})`);
    }
  }
  return t;
}

/**
 * Makes the registry consult `table` (null: default rules only). A table measured on another
 * adapter is refused: its timings say nothing about this one.
 */
export function useTunedTable(table: TunedTable | null): void {
  if (table) {
    parseTunedTable(table);
    const here = adapterKey();
    if (table.adapter !== here) throw new Error(`useTunedTable: the table was measured on '${table.adapter}', this adapter is '${here}'`);
  }
  setActiveTunedTable(table);
}

/** Progress of tuneFamily: a workload's times per variant and the winner. */
export type TuneProgress = (line: string) => void;

/**
 * Times every applicable variant of `family` on each workload with `timer` and returns the choice
 * per shape class (least summed time over the workloads whose launches fall in the class).
 */
export async function tuneFamily(family: string, workloads: readonly TuneWorkload[], timer: TuneTimer, progress?: TuneProgress): Promise<Record<string, TunedEntry>> {
  const f = kernelFamily(family);
  if (!f.tunable) throw new Error(`tuneFamily: '${family}' has no shape classes to tune`);
  if (forcedVariant(family)) throw new Error(`tuneFamily: '${family}' has a forced variant (setKernelVariant('${family}', null) first)`);
  let out: Record<string, TunedEntry> = {};
  for (const w of workloads) {
    const { picks } = recordPicks(w.run);
    const mine = picks.filter((p) => p.family === family);
    if (!mine.length) throw new Error(`tuneFamily: workload '${w.label}' ran no ${family} kernel`);
    const classes = [...new Set(mine.map((p) => p.shapeClass))];
    const candidates = [...new Set(mine.flatMap((p) => p.applicable))].filter((v) => !w.exclude?.includes(v));
    const ms: Record<string, number> = {};
    for (const v of candidates) {
      setKernelVariant(family, v);
      try {
        ms[v] = (await timer(w.run)) * 1000;
      } finally {
        setKernelVariant(family, null);
      }
    }
    progress?.(`tune ${family} ${w.label} [${classes.join(', ')}]: ${Object.entries(ms).map(([v, t]) => `${v} ${t.toFixed(2)} ms`).join(', ')}`);
    out = mergeTuned(out, Object.fromEntries(classes.map((cls) => [cls, entry(family, ms, w.label)])), family);
  }
  return out;
}

/** The fastest variant that may stand for a whole class (KernelVariant.classWide), with every time. */
function entry(family: string, ms: Record<string, number>, workload: string): TunedEntry {
  const ranked = Object.entries(ms).sort((a, b) => a[1] - b[1]);
  const variants = kernelFamily(family).variants;
  const winner = ranked.find(([v]) => variants.find((x) => x.name === v)?.classWide !== false);
  if (!winner) throw new Error(`tune: no ${family} variant that a table may pick was timed on '${workload}'`);
  return { variant: winner[0], ms: Object.fromEntries(ranked), workload };
}

/**
 * Merges choices per shape class: where both have a class, the times of the variants timed in
 * both are summed (a variant must have run every workload of the class to compete) and the least wins.
 */
export function mergeTuned(a: Readonly<Record<string, TunedEntry>>, b: Readonly<Record<string, TunedEntry>>, family: string): Record<string, TunedEntry> {
  const out: Record<string, TunedEntry> = { ...a };
  for (const [cls, e] of Object.entries(b)) {
    const old = out[cls];
    if (!old) {
      out[cls] = e;
      continue;
    }
    const ms: Record<string, number> = {};
    for (const [v, t] of Object.entries(e.ms)) if (v in old.ms) ms[v] = old.ms[v] + t;
    out[cls] = Object.keys(ms).length ? entry(family, ms, `${old.workload ?? ''}; ${e.workload ?? ''}`) : e;
  }
  return out;
}

/**
 * A family's entries after a tuning run: the classes the run measured replace the older table's
 * entries entirely (their times came from another run, under other load, and may lack variants
 * registered since, which summing would drop); classes the run did not measure are kept. Within
 * the run, a class measured by several cases sums them (mergeTuned, in the order given).
 */
export function replaceMeasured(
  older: Readonly<Record<string, TunedEntry>> | undefined,
  runCases: readonly Readonly<Record<string, TunedEntry>>[],
  family: string,
): Record<string, TunedEntry> {
  const run = runCases.reduce<Record<string, TunedEntry>>((acc, e) => mergeTuned(acc, e, family), {});
  return { ...older, ...run };
}

/** Tunes several families into one table for the open adapter (entries of `base` not re-measured are kept, re-measured ones replaced: replaceMeasured). */
export async function tune(workloads: Readonly<Record<string, readonly TuneWorkload[]>>, timer: TuneTimer, options: { base?: TunedTable | null; progress?: TuneProgress } = {}): Promise<TunedTable> {
  const adapterName = runtime().adapterName;
  const table: TunedTable = { version: 1, adapter: adapterKey(adapterName), adapterName, measured: new Date().toISOString(), families: {} };
  const base = options.base && options.base.adapter === table.adapter ? options.base : null;
  for (const [family, classes] of Object.entries(base?.families ?? {})) table.families[family] = { ...classes };
  // time with the default rules, not an older table's choices
  const before = activeTunedTable();
  setActiveTunedTable(null);
  try {
    for (const [family, ws] of Object.entries(workloads)) {
      table.families[family] = replaceMeasured(table.families[family], [await tuneFamily(family, ws, timer, options.progress)], family);
    }
  } finally {
    setActiveTunedTable(before);
  }
  return table;
}

const storageKey = (adapter: string) => `medseg.tuned.${adapter}`;

/** The browser's stored table for this adapter (localStorage), or null. */
export function loadStoredTunedTable(): TunedTable | null {
  const ls = (globalThis as { localStorage?: Storage }).localStorage;
  if (!ls) return null;
  const text = ls.getItem(storageKey(adapterKey()));
  return text ? parseTunedTable(JSON.parse(text), `localStorage ${storageKey(adapterKey())}`) : null;
}

/** Stores a table in the browser's localStorage under its adapter; throws where there is none (Node). */
export function storeTunedTable(table: TunedTable): void {
  const ls = (globalThis as { localStorage?: Storage }).localStorage;
  if (!ls) throw new Error('storeTunedTable: no localStorage here (in Node the benchmark writes a JSON file)');
  ls.setItem(storageKey(table.adapter), JSON.stringify(table));
}
