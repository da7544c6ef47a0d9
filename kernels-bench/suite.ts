// The suite: measures the adapter's FMA and copy peaks (a few runs: the median, and the range
// shown), shows the plan (cases, rows, skipped ones, an estimate of the time), then runs each case
// of the chosen families. A registry case is run once unforced (recording which variant each launch
// gets, and why: the default rule or the tuned table), then once per variant the registry has for
// it, forced: cold (first run, pipeline creation included) and warm (timing.ts), then the check of
// that variant's output against the float64 reference. With `tune`, matmul, conv and attention
// cases are timed through the tuner (src/gpu/tune.ts), whose table is saved after every case and
// then used for the picks. The JSON, Markdown and SVG roofline files are rewritten after every row,
// so an interrupted run keeps what it measured. Never asserts a time.
import { init, memoryStats } from 'medseg';
import {
  adapterKey, adapterKind, forcedVariant, kernelFamily, recordPicks, replaceMeasured, runtime, setKernelVariant, tuneFamily, useTunedTable,
  type PickRecord, type TunedEntry, type TunedTable,
} from 'medseg/gpu';
import type { BenchCase, BenchFamily, BenchInstance } from './case.js';
import { measurePeaks } from './peak.js';
import { markdown, peakLine, type PeakSummary, type Row } from './report.js';
import { rooflineSvg } from './roofline.js';
import { coldRun, timeRuns, timeSource, useTimestamps } from './timing.js';
import { PASSES, measurePart, modelBenches, modelMarkdown, modelName, type ModelRow, type Pass } from './models.js';
import type { SuiteIO } from './io.js';

export const FAMILIES: Record<string, () => Promise<{ family: BenchFamily }>> = {
  matmul: () => import('./matmul.js'),
  conv: () => import('./conv.js'),
  attention: () => import('./attention.js'),
  norm: () => import('./norm.js'),
  elementwise: () => import('./elementwise.js'),
  interpolate: () => import('./interpolate.js'),
  optim: () => import('./optim.js'),
};

/** The families the tuner measures (the registry's tunable ones). */
export const TUNABLE = ['matmul', 'conv', 'attention'];

/**
 * On CPU adapters, cases above this much work or traffic, or needing more than CPU_PEAK_SECONDS at the
 * adapter's best measured FMA rate, are skipped (and listed) unless full. At llvmpipe's peak on 2 cores
 * (40-65 GFLOP/s) 4 GFLOP takes 0.1 s; SwiftShader's peak is some 40x lower, and there the cases under
 * 4 GFLOP would take hours (at a few per cent of the peak, for every variant).
 */
const CPU_GFLOP_BUDGET = 4;
const CPU_BYTES_BUDGET = 2 ** 30;
const CPU_PEAK_SECONDS = 0.5;

export interface SuiteOptions {
  families: string[];
  /** also the model benchmarks (models.ts): each model's forward and forward+backward (true: all; or their keys: vnet, transunet, medsam) */
  models?: boolean | string[];
  /** the model passes to run (default both) */
  passes?: Pass[];
  /** where files and tuned tables go: tune-cache.ts's nodeIO in Node, browser/page.ts's in Chromium */
  io: SuiteIO;
  /** the small cases of each family (a smoke run) */
  quick?: boolean;
  /** also the cases a CPU adapter skips */
  full?: boolean;
  json?: string;
  md?: string;
  svg?: string;
  /** re-measure the tuned table for matmul, conv and attention (saved to tune-cache.ts's file) */
  tune?: boolean;
  /** consult no tuned table: default rules only */
  noTuned?: boolean;
  /** seconds of warm timing per row (default 0.3 on CPU adapters, 0.2 on GPUs; 0.05 quick) */
  budget?: number;
  /** least number of warm batches per row (default 3; a smoke test may ask for 1) */
  minBatches?: number;
  /** runs of the peak microkernels (default 3) */
  peakRuns?: number;
  /** wall time even where the device has timestamp queries */
  wall?: boolean;
  /** variants not to run, per registry family (they are listed in the rows' notes) */
  skipVariants?: Record<string, string[]>;
  log?: (line: string) => void;
}

export interface SuiteResult {
  adapter: string;
  adapterKey: string;
  peaks: PeakSummary;
  rows: Row[];
  modelRows: ModelRow[];
  complete: boolean;
  tunedFrom: string | null;
}

const duration = (s: number) => (s < 90 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function peakSummary(cpu: boolean, runs: number, budget: number): Promise<PeakSummary> {
  const all = [];
  for (let i = 0; i < runs; i++) all.push(await measurePeaks(cpu, budget));
  const g = all.map((r) => r.gflops);
  const b = all.map((r) => r.gbps);
  return { gflops: median(g), gbps: median(b), gflopsRange: [Math.min(...g), Math.max(...g)], gbpsRange: [Math.min(...b), Math.max(...b)], runs };
}

/** The variants a probe's picks of `family` could have used, and which were picked by what. */
function pickSummary(picks: PickRecord[], family: string) {
  const mine = picks.filter((p) => p.family === family);
  const applicable = [...new Set(mine.flatMap((p) => p.applicable))];
  const picked = new Map<string, number>();
  for (const p of mine) picked.set(p.variant, (picked.get(p.variant) ?? 0) + 1);
  const by = mine.some((p) => p.source === 'tuned') ? ('tuned' as const) : ('rule' as const);
  return { applicable, picked, launches: mine.length, by, classes: [...new Set(mine.map((p) => p.shapeClass).filter(Boolean))] };
}

export async function runSuite(o: SuiteOptions): Promise<SuiteResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const rt = await init();
  const adapter = rt.adapterName;
  const key = adapterKey(adapter);
  const cpu = adapterKind() === 'cpu';
  const budget = o.budget ?? (o.quick ? 0.05 : cpu ? 0.3 : 0.2);
  log(`medseg kernel benchmarks on ${adapter}${cpu && !o.quick ? ' (a CPU adapter: large cases skipped unless --full)' : ''}`);
  useTimestamps(!o.wall);
  const time = timeSource();
  log(`times: ${time.source === 'timestamp' ? 'GPU time from timestamp queries (beside it the end-to-end wall time, from runs without the profiler)' : `wall clock around a sync (${time.why})`}`);

  let table: TunedTable | null = null;
  let tunedFrom: string | null = null;
  if (!o.noTuned && !o.tune) {
    const found = await o.io.loadTable(key);
    if (found) {
      useTunedTable(found.table);
      table = found.table;
      tunedFrom = found.from;
      log(`tuned table: ${found.from} (measured ${found.table.measured ?? '?'}); --no-tuned uses the default rules`);
    } else log(`tuned table: none for '${key}' (default rules; --tune measures one)`);
  } else useTunedTable(null);
  if (o.tune) {
    table = { version: 1, adapter: key, adapterName: adapter, measured: new Date().toISOString(), families: { ...((await o.io.loadTable(key))?.table.families ?? {}) } };
    tunedFrom = o.io.cachePath(key);
    log(`tuning ${TUNABLE.filter((f) => o.families.includes(f)).join(', ')}: the table goes to ${tunedFrom}`);
  }

  const peaks = await peakSummary(cpu, o.peakRuns ?? 3, o.quick ? 0.1 : cpu ? 0.5 : 0.2);
  log(`peaks: ${peakLine(peaks)}${peaks.gflopsRange[1] > 1.5 * peaks.gflopsRange[0] ? ' -- the FMA peak varies over 1.5x between runs: the adapter is shared or throttling' : ''}`);

  const plan: { family: string; c: BenchCase; skip: string | null }[] = [];
  for (const family of o.families) {
    const { family: fam } = await FAMILIES[family]();
    for (const c of o.quick ? fam.quick : fam.cases) {
      const gflop = c.flops / 1e9;
      const slow = gflop / peaks.gflopsRange[1] > CPU_PEAK_SECONDS;
      const heavy = cpu && !o.full && !o.quick && (gflop > CPU_GFLOP_BUDGET || c.bytes > CPU_BYTES_BUDGET || slow);
      const work = `${gflop < 0.1 ? gflop.toPrecision(2) : gflop.toFixed(1)} GFLOP, ${(c.bytes / 2 ** 30).toFixed(2)} GiB moved`;
      const why = slow && gflop <= CPU_GFLOP_BUDGET ? `, over ${CPU_PEAK_SECONDS} s at the best measured FMA peak (${peaks.gflopsRange[1].toFixed(2)} GFLOP/s)` : '';
      plan.push({ family, c, skip: heavy ? `skipped: ${work}${why} on a CPU adapter (--full runs it)` : null });
    }
  }
  const runnable = plan.filter((p) => !p.skip);
  // the models: on a CPU adapter MedSAM vit_b's image encoder is skipped unless full (a forward takes over 10 minutes there)
  const benches = o.models ? modelBenches(!!o.quick).filter((b) => o.models === true || (o.models as string[]).includes(b.key)) : [];
  const passes = o.passes ?? PASSES;
  const modelSkip = (model: string, part: string) =>
    cpu && !o.full && !o.quick && model === 'MedSAM vit_b' && part === 'image encoder' ? 'skipped: over 10 minutes per forward on a CPU adapter (--full runs it)' : null;
  const estRows = (c: BenchCase) => (c.registry ? kernelFamily(c.registry).variants.length - Object.keys(c.exclude ?? {}).length : 1);
  const modelPlanRows = benches.reduce((n, b) => n + b.parts.filter((part) => !modelSkip(b.model, part)).length * passes.length, 0);
  const totalRows = runnable.reduce((s, p) => s + estRows(p.c), 0) + modelPlanRows;
  // about three budgets per row (cold run, warm batches, the check); the ETA follows the measured pace
  if (o.families.length) {
    log(
      `plan: ${runnable.length} cases (~${totalRows - modelPlanRows} rows) in ${o.families.length} families (${o.families.join(', ')})` +
        `${plan.length > runnable.length ? `, ${plan.length - runnable.length} skipped` : ''}, at least ~${duration((totalRows - modelPlanRows) * 3 * budget)} (more where pipelines compile slowly)`,
    );
  }
  if (o.models) {
    log(
      `plan: ${modelPlanRows} model rows (${benches.map((b) => b.model).join(', ')}; ${passes.join(' and ')}; each a cold and at least one warm run)` +
        (cpu && !o.quick ? ': full sizes take minutes per row on a CPU adapter (on llvmpipe TransUNet forward took 21-76 s and forward+backward 69 s, with the load; the ETA follows the measured pace)' : ''),
    );
    // per row: the cold run and, where a run outlasts the budget, one warm run (two with timestamp
    // queries: one for wall time, one in the profiler; timing.ts), at the share of the FMA peak the
    // models reached on the CPU adapters here (about 4%; a GPU differs)
    const share = 0.04;
    const runsPerRow = time.source === 'timestamp' ? 3 : 2;
    const runsSaid = time.source === 'timestamp' ? 'cold + two warm runs (wall, then GPU time)' : 'cold + one warm run';
    const est: string[] = [];
    for (const b of benches) for (const part of b.parts) {
      const g = b.gflop?.[part];
      if (g === undefined || modelSkip(b.model, part)) continue;
      for (const pass of passes) {
        const s = (runsPerRow * (pass === 'forward' ? g : 3 * g)) / (share * peaks.gflops);
        est.push(`${modelName({ model: b.model, part })} ${pass} ~${duration(s)}`);
      }
    }
    if (est.length) log(`estimated (${(100 * share).toFixed(0)}% of the ${peaks.gflops.toFixed(1)} GFLOP/s FMA peak, ${runsSaid}): ${est.join('; ')}`);
  }

  const rows: Row[] = [];
  const modelRows: ModelRow[] = [];
  // with --tune: each tuned case's entries per family, and the table's families before the run
  const tunedNow: Record<string, Record<string, TunedEntry>[]> = {};
  const olderTable: TunedTable['families'] = { ...table?.families };
  const header = [
    `Tuned table: ${o.tune ? `measured in this run (${tunedFrom})` : tunedFrom ?? 'none (default rules)'}`,
    ...(o.quick ? ['Quick run: small shapes (--quick).'] : []),
  ];
  // a models-only run: the adapter, peaks and timing method, then the model table
  const tables = () => (o.families.length ? markdown(rows, peaks, adapter, header, time) : markdown(rows, peaks, adapter, header, time).split('\n').slice(0, 3).join('\n') + '\n') + modelMarkdown(modelRows);
  const save = (complete: boolean) => {
    const json = { adapter, adapterKey: key, time, peaks, rows, modelRows, complete, tuned: o.tune ? table : tunedFrom, quick: !!o.quick, date: new Date().toISOString() };
    if (o.json) o.io.write(o.json, JSON.stringify(json, null, 2) + '\n');
    if (o.md) o.io.write(o.md, tables());
    // the roofline plots kernels; a models-only run has none
    if (o.svg && (rows.length || !o.models)) o.io.write(o.svg, rooflineSvg(rows, peaks, adapter, time.source === 'timestamp' ? 'GPU time from timestamp queries' : 'wall time with a sync'));
  };
  save(false);

  const started = performance.now();
  let done = 0;
  const progress = (r: Row) => {
    done++;
    const elapsed = (performance.now() - started) / 1000;
    const eta = done < totalRows ? `, ETA ${duration((elapsed / done) * Math.max(0, totalRows - done))}` : '';
    log(
      `[${done}/~${totalRows}${eta}] ${r.name} [${r.variant}]${r.picked ? ` (${r.pickedBy ?? 'picked'})` : ''}: cold ${r.coldMs?.toFixed(1)} ms, warm ${r.warmMs?.toFixed(2)} ms${r.timeSource === 'timestamp' ? ` GPU (${r.wallMs?.toFixed(2)} wall)` : ''}` +
        ` (spread ${r.spreadPct?.toFixed(0)}%), ${r.gflops?.toFixed(3)} GFLOP/s (${r.pctFmaPeak?.toFixed(1) ?? '-'}% of FMA peak), ${r.gbps?.toFixed(3)} GB/s, max rel err ${r.maxRelErr?.toExponential(1)}`,
    );
  };

  const measure = async (c: BenchCase, family: string, inst: BenchInstance, variant: string, cold: number | null, extra: Partial<Row>): Promise<Row> => {
    const coldS = cold ?? (await coldRun(inst.run));
    const t = await timeRuns(inst.run, budget, o.minBatches);
    const maxRelErr = await inst.check();
    const gflops = c.flops / t.median / 1e9;
    const gbps = c.bytes / t.median / 1e9;
    return {
      family, name: c.name, variant, variants: [], picks: [], picked: false, pickedBy: null,
      coldMs: coldS * 1000, warmMs: t.median * 1000, wallMs: t.wall * 1000, timeSource: t.source, spreadPct: (100 * (t.max - t.min)) / t.median, runs: t.runs,
      gflops, gbps, intensity: c.bytes ? c.flops / c.bytes : null,
      pctFmaPeak: c.flops ? (100 * gflops) / peaks.gflops : null, pctCopyPeak: (100 * gbps) / peaks.gbps,
      maxRelErr, ...extra,
    };
  };

  for (const { family, c, skip } of plan) {
    if (skip) {
      rows.push({ family, name: c.name, variant: c.label ?? '-', registry: c.registry, variants: c.registry ? kernelFamily(c.registry).variants.map((v) => v.name) : [], picks: [], picked: false, pickedBy: null, coldMs: null, warmMs: null, spreadPct: null, runs: null, gflops: null, gbps: null, intensity: c.flops / c.bytes, pctFmaPeak: null, pctCopyPeak: null, maxRelErr: null, note: skip });
      log(`${c.name}: ${skip}`);
      save(false);
      continue;
    }
    const inst = await c.setup();
    try {
      if (!c.registry) {
        const row = await measure(c, family, inst, c.label ?? '-', null, {});
        rows.push(row);
        progress(row);
        save(false);
        continue;
      }
      const reg = c.registry;
      const caseRows: Row[] = [];
      const exclude: Record<string, string> = { ...c.exclude };
      for (const v of o.skipVariants?.[reg] ?? []) exclude[v] ??= 'skipped by request';
      const excluded = Object.keys(exclude);
      const push = (row: Row) => {
        caseRows.push(row);
        rows.push(row);
        progress(row);
        save(false);
      };
      let probe: ReturnType<typeof pickSummary>;
      if (o.tune && TUNABLE.includes(reg)) {
        // the tuner times every variant through this timer, which records the rows
        useTunedTable(null);
        const timer = async (run: () => void) => {
          const v = forcedVariant(reg)!;
          const row = await measure(c, family, { ...inst, run }, v, null, { registry: reg });
          push(row);
          return row.warmMs! / 1000;
        };
        const entries = await tuneFamily(reg, [{ label: c.name, run: inst.run, exclude: excluded }], timer, log);
        // classes measured in this run replace the older table's; within the run a class sums its cases
        (tunedNow[reg] ??= []).push(entries);
        table!.families[reg] = replaceMeasured(olderTable[reg], tunedNow[reg], reg);
        await o.io.saveTable(key, table!);
        useTunedTable(table);
        probe = pickSummary(recordPicks(inst.run).picks, reg);
        await rt.sync();
      } else {
        // the unforced run first: its cold time is the picked variant's, its picks mark the rows
        const t0 = performance.now();
        probe = pickSummary(recordPicks(inst.run).picks, reg);
        await rt.sync();
        const probeCold = (performance.now() - t0) / 1000;
        const soleDefault = probe.picked.size === 1 ? [...probe.picked.keys()][0] : null;
        for (const v of probe.applicable) {
          if (excluded.includes(v)) continue;
          setKernelVariant(reg, v);
          try {
            push(await measure(c, family, inst, v, v === soleDefault ? probeCold : null, { registry: reg }));
          } finally {
            setKernelVariant(reg, null);
          }
        }
      }
      for (const row of caseRows) {
        row.variants = probe.applicable;
        row.picks = [...probe.picked.keys()];
        const n = probe.picked.get(row.variant) ?? 0;
        row.picked = n > 0;
        row.pickedBy = n > 0 ? probe.by : null;
        const notes = [
          probe.classes.length ? `class ${probe.classes.join(', ')}` : '',
          n > 0 && n < probe.launches ? `picked for ${n} of ${probe.launches} launches` : '',
          ...excluded.filter((v) => probe.applicable.includes(v)).map((v) => `${v} not run: ${exclude[v]}`),
        ].filter(Boolean);
        row.note = notes.join('; ');
      }
      save(false);
    } finally {
      inst.teardown?.();
    }
  }
  for (const b of benches) {
    log(`${b.model}: building with random weights`);
    const built = b.build();
    try {
      for (const part of built.parts) {
        for (const pass of passes) {
          const name = `${modelName({ model: b.model, part: part.part })} ${pass}`;
          const skip = modelSkip(b.model, part.part);
          if (skip) {
            log(`${name}: ${skip}`);
            continue;
          }
          log(`${name} (${part.input}): running`);
          const r = await measurePart(b.model, part, pass, budget, peaks.gflops, o.minBatches);
          modelRows.push(r);
          done++;
          const elapsed = (performance.now() - started) / 1000;
          const eta = done < totalRows ? `, ETA ${duration((elapsed / done) * Math.max(0, totalRows - done))}` : '';
          log(
            `[${done}/~${totalRows}${eta}] ${name}: cold ${r.coldMs.toFixed(1)} ms, warm ${r.warmMs.toFixed(1)} ms (spread ${r.spreadPct.toFixed(0)}%, ${r.runs} runs), ` +
              `${r.gflop.toPrecision(3)} GFLOP, ${r.gflops.toFixed(3)} GFLOP/s (${r.pctFmaPeak.toFixed(1)}% of FMA peak), peak ${r.peakMiB.toFixed(1)} MiB`,
          );
          save(false);
        }
      }
    } finally {
      built.dispose();
    }
  }
  save(true);
  log(`\n${tables()}`);
  log(`peak GPU memory held by tensors: ${(memoryStats().peakBytes / 2 ** 20).toFixed(1)} MiB; dispatches ${runtime().dispatches}`);
  return { adapter, adapterKey: key, peaks, rows, modelRows, complete: true, tunedFrom };
}
