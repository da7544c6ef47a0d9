// The benchmark runner: `npm run bench -- [family ...] [--json FILE] [--md FILE] [--full]`.
// Measures the adapter's FMA and copy peaks (three times: the median, and the spread shown), shows
// the plan (cases, skipped ones, an estimate of the time), then times each case of the chosen
// kernel families: cold (first run, pipeline compile included) and warm (mean over a batch of runs
// in one submit), and prints GFLOP/s, GB/s and their share of the measured peaks, with progress and
// an ETA. The JSON and Markdown files are rewritten after every case, so an interrupted run (Ctrl-C)
// keeps what it measured. Never asserts a time.
import { renameSync, writeFileSync } from 'node:fs';
import { init, memoryStats } from 'medseg';
import { adapterKind, runtime } from 'medseg/gpu';
import type { BenchCase } from './case.js';
import { measurePeaks, timeIt, type Peaks } from './peak.js';

/** Runs of the peak microkernels: their median is the reference, their range is reported. */
const PEAK_RUNS = 3;

const FAMILIES: Record<string, () => Promise<{ cases: BenchCase[] }>> = {
  matmul: () => import('./matmul.js'),
  interpolate: () => import('./interpolate.js'),
  optim: () => import('./optim.js'),
  attention: () => import('./attention.js'),
  conv: () => import('./conv.js'),
  norm: () => import('./norm.js'),
  elementwise: () => import('./elementwise.js'),
};

/** On CPU adapters, cases above this much work or traffic are skipped (and listed) unless --full. */
const CPU_GFLOP_BUDGET = 4;
const CPU_BYTES_BUDGET = 2 ** 30;

interface Row {
  family: string;
  name: string;
  variant: string;
  coldMs: number | null;
  warmMs: number | null;
  gflops: number | null;
  gbps: number | null;
  pctFmaPeak: number | null;
  pctCopyPeak: number | null;
  note?: string;
}

function parseArgs(argv: string[]) {
  const families: string[] = [];
  const opts: { json?: string; md?: string; full: boolean } = { full: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = argv[++i];
    else if (a === '--md') opts.md = argv[++i];
    else if (a === '--full') opts.full = true;
    else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- [${Object.keys(FAMILIES).join('|')} ...] [--json FILE] [--md FILE] [--full]`);
      process.exit(0);
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else if (!(a in FAMILIES)) throw new Error(`unknown kernel family '${a}' (known: ${Object.keys(FAMILIES).join(', ')})`);
    else families.push(a);
  }
  return { families: families.length ? families : Object.keys(FAMILIES), ...opts };
}

const fmt = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));

interface PeakSummary extends Peaks {
  /** [min, max] over the runs */
  gflopsRange: [number, number];
  gbpsRange: [number, number];
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function peakSummary(cpu: boolean): Promise<PeakSummary> {
  const runs: Peaks[] = [];
  for (let i = 0; i < PEAK_RUNS; i++) runs.push(await measurePeaks(cpu));
  const g = runs.map((r) => r.gflops);
  const b = runs.map((r) => r.gbps);
  return { gflops: median(g), gbps: median(b), gflopsRange: [Math.min(...g), Math.max(...g)], gbpsRange: [Math.min(...b), Math.max(...b)] };
}

const peakLine = (p: PeakSummary) =>
  `FMA ${p.gflops.toFixed(2)} GFLOP/s (${p.gflopsRange.map((v) => v.toFixed(2)).join('-')} over ${PEAK_RUNS} runs), ` +
  `copy ${p.gbps.toFixed(2)} GB/s (${p.gbpsRange.map((v) => v.toFixed(2)).join('-')})`;

/** Writes a file whole or not at all (a temp file, then rename). */
function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.partial`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

const duration = (s: number) => (s < 90 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`);

function table(rows: Row[], peaks: PeakSummary, adapter: string): string {
  const lines = [
    `Adapter: ${adapter}`,
    `Measured peaks (median): ${peakLine(peaks)}`,
    '',
    '| kernel | variant | cold ms | warm ms | GFLOP/s | GB/s | % FMA peak | % copy peak | note |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.variant} | ${fmt(r.coldMs)} | ${fmt(r.warmMs, 2)} | ${fmt(r.gflops, 2)} | ${fmt(r.gbps, 2)} | ${fmt(r.pctFmaPeak)} | ${fmt(r.pctCopyPeak)} | ${r.note ?? ''} |`,
    ),
  ];
  return lines.join('\n');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const rt = await init();
  const adapter = rt.adapterName;
  const cpu = adapterKind() === 'cpu';
  console.log(`medseg kernel benchmarks on ${adapter}${cpu ? ' (a CPU adapter: large cases skipped unless --full)' : ''}`);
  const peaks = await peakSummary(cpu);
  console.log(`peaks: ${peakLine(peaks)}`);
  // The plan: every case of the chosen families, and which a CPU adapter skips.
  const plan: { family: string; c: BenchCase; skip: string | null }[] = [];
  for (const family of args.families) {
    const { cases } = await FAMILIES[family]();
    for (const c of cases) {
      const heavy = cpu && !args.full && (c.flops / 1e9 > CPU_GFLOP_BUDGET || c.bytes > CPU_BYTES_BUDGET);
      const work = `${(c.flops / 1e9).toFixed(1)} GFLOP, ${(c.bytes / 2 ** 30).toFixed(2)} GiB moved`;
      plan.push({ family, c, skip: heavy ? `skipped: ${work} on a CPU adapter (--full runs it)` : null });
    }
  }
  const runnable = plan.filter((p) => !p.skip).length;
  // About three timing budgets per case (the cold run, the warm batches, set-up); the ETA then
  // follows the measured pace.
  const budget = cpu ? 0.3 : 0.2;
  console.log(
    `plan: ${runnable} cases in ${args.families.length} families (${args.families.join(', ')})` +
      `${plan.length > runnable ? `, ${plan.length - runnable} skipped` : ''}, at least ~${duration(runnable * 3 * budget)} (more where pipelines compile slowly)`,
  );
  const rows: Row[] = [];
  const save = () => {
    if (args.json) writeAtomic(args.json, JSON.stringify({ adapter, peaks, rows, complete: rows.length === plan.length, date: new Date().toISOString() }, null, 2));
    if (args.md) writeAtomic(args.md, table(rows, peaks, adapter) + '\n');
  };
  process.once('SIGINT', () => {
    save();
    const kept = [args.json, args.md].filter(Boolean).join(' and ');
    const measured = rows.filter((r) => r.warmMs !== null).length;
    console.error(`\ninterrupted after ${measured} of ${runnable} cases${kept ? `; ${kept} ${kept.includes(' and ') ? 'hold' : 'holds'} them` : ' (--json FILE or --md FILE keeps results)'}`);
    process.exit(130);
  });
  const started = performance.now();
  let done = 0;
  for (const { family, c, skip } of plan) {
    const base = { family, name: c.name, variant: c.variant };
    if (skip) {
      rows.push({ ...base, coldMs: null, warmMs: null, gflops: null, gbps: null, pctFmaPeak: null, pctCopyPeak: null, note: skip });
      console.log(`${c.name} [${c.variant}]: ${skip}`);
      save();
      continue;
    }
    const run = await c.setup();
    const t0 = performance.now();
    run();
    await rt.sync();
    const coldMs = performance.now() - t0;
    const warm = await timeIt(run, budget);
    c.teardown?.();
    const gflops = c.flops / warm / 1e9;
    const gbps = c.bytes / warm / 1e9;
    const row: Row = {
      ...base,
      coldMs,
      warmMs: warm * 1000,
      gflops,
      gbps,
      pctFmaPeak: c.flops ? (100 * gflops) / peaks.gflops : null,
      pctCopyPeak: (100 * gbps) / peaks.gbps,
    };
    rows.push(row);
    save();
    done++;
    const elapsed = (performance.now() - started) / 1000;
    const eta = done < runnable ? `, ETA ${duration((elapsed / done) * (runnable - done))}` : '';
    console.log(
      `[${done}/${runnable}${eta}] ${c.name} [${c.variant}]: cold ${coldMs.toFixed(1)} ms, warm ${(warm * 1000).toFixed(2)} ms, ${gflops.toFixed(2)} GFLOP/s (${fmt(row.pctFmaPeak)}% of FMA peak), ${gbps.toFixed(2)} GB/s`,
    );
  }
  console.log(`\n${table(rows, peaks, adapter)}\n`);
  console.log(`peak GPU memory held by tensors: ${(memoryStats().peakBytes / 2 ** 20).toFixed(1)} MiB; dispatches ${runtime().dispatches}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
