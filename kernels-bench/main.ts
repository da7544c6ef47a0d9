// The benchmark runner: `npm run bench -- [family ...] [--json FILE] [--md FILE] [--full]`.
// Measures the adapter's FMA and copy peaks, then times each case of the chosen kernel families:
// cold (first run, pipeline compile included) and warm (mean over a batch of runs in one submit),
// and prints GFLOP/s, GB/s and their share of the measured peaks. Never asserts a time.
import { writeFileSync } from 'node:fs';
import { init, memoryStats } from 'medseg';
import { adapterKind, runtime } from 'medseg/gpu';
import type { BenchCase } from './case.js';
import { measurePeaks, timeIt, type Peaks } from './peak.js';

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

function table(rows: Row[], peaks: Peaks, adapter: string): string {
  const lines = [
    `Adapter: ${adapter}`,
    `Measured peaks: FMA ${peaks.gflops.toFixed(1)} GFLOP/s, copy ${peaks.gbps.toFixed(1)} GB/s`,
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
  const peaks = await measurePeaks(cpu);
  console.log(`peaks: FMA ${peaks.gflops.toFixed(2)} GFLOP/s, copy ${peaks.gbps.toFixed(2)} GB/s`);
  const rows: Row[] = [];
  for (const family of args.families) {
    const { cases } = await FAMILIES[family]();
    for (const c of cases) {
      const base = { family, name: c.name, variant: c.variant };
      if (cpu && !args.full && (c.flops / 1e9 > CPU_GFLOP_BUDGET || c.bytes > CPU_BYTES_BUDGET)) {
        const work = `${(c.flops / 1e9).toFixed(1)} GFLOP, ${(c.bytes / 2 ** 30).toFixed(2)} GiB moved`;
        const row: Row = { ...base, coldMs: null, warmMs: null, gflops: null, gbps: null, pctFmaPeak: null, pctCopyPeak: null, note: `skipped: ${work} on a CPU adapter (--full runs it)` };
        rows.push(row);
        console.log(`${c.name} [${c.variant}]: ${row.note}`);
        continue;
      }
      const run = await c.setup();
      const t0 = performance.now();
      run();
      await rt.sync();
      const coldMs = performance.now() - t0;
      const warm = await timeIt(run, cpu ? 0.3 : 0.2);
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
      console.log(
        `${c.name} [${c.variant}]: cold ${coldMs.toFixed(1)} ms, warm ${(warm * 1000).toFixed(2)} ms, ${gflops.toFixed(2)} GFLOP/s (${fmt(row.pctFmaPeak)}% of FMA peak), ${gbps.toFixed(2)} GB/s`,
      );
    }
  }
  const md = table(rows, peaks, adapter);
  console.log(`\n${md}\n`);
  console.log(`peak GPU memory held by tensors: ${(memoryStats().peakBytes / 2 ** 20).toFixed(1)} MiB; dispatches ${runtime().dispatches}`);
  if (args.json) writeFileSync(args.json, JSON.stringify({ adapter, peaks, rows, date: new Date().toISOString() }, null, 2));
  if (args.md) writeFileSync(args.md, md + '\n');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
