// The suite's results as rows, and their Markdown / terminal table: per row the case, the variant
// timed, every variant the registry has for the case (the pick starred), whether this row is the
// pick and by what (the default rule or the tuned table), cold and warm times with the warm
// spread (GPU time from timestamp queries where the device has them, and wall time), GFLOP/s,
// GB/s, shares of the measured peaks, and the max relative error of the check.
export interface PeakSummary {
  gflops: number;
  gbps: number;
  /** [min, max] over the runs */
  gflopsRange: [number, number];
  gbpsRange: [number, number];
  runs: number;
}

export interface Row {
  family: string;
  name: string;
  variant: string;
  /** the registry family the variants belong to (absent: a kernel with one form) */
  registry?: string;
  /** the registry's variants for the case (all that apply; excluded ones too, see note) */
  variants: string[];
  /** the variants the op runs unforced (by the default rule or the tuned table; several where launches differ) */
  picks: string[];
  /** true where this row's variant is among them */
  picked: boolean;
  /** what picked it: the default rule or the tuned table (null when not a registry case) */
  pickedBy: 'rule' | 'tuned' | null;
  coldMs: number | null;
  /** ms per run: GPU time where timeSource is 'timestamp', else wall time around a sync */
  warmMs: number | null;
  /** wall ms per run around a sync, over batches run without the profiler (timing.ts) */
  wallMs?: number | null;
  timeSource?: 'timestamp' | 'wall';
  /** (max - min) / median of the warm batches, in percent */
  spreadPct: number | null;
  runs: number | null;
  gflops: number | null;
  gbps: number | null;
  /** flops / bytes of the case */
  intensity: number | null;
  pctFmaPeak: number | null;
  pctCopyPeak: number | null;
  /** the check's max relative error against the float64 reference (null: not run) */
  maxRelErr: number | null;
  note?: string;
}

/** Errors above this are flagged in the table (f32 sums of ~10^4 terms stay near 1e-4). */
export const ERR_FLAG = 2e-3;

const fmt = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));
const err = (v: number | null) => (v === null ? '-' : `${v.toExponential(1)}${v > ERR_FLAG ? ' (!)' : ''}`);

export const peakLine = (p: PeakSummary) =>
  `FMA ${p.gflops.toFixed(2)} GFLOP/s (${p.gflopsRange.map((v) => v.toFixed(2)).join('-')} over ${p.runs} runs), ` +
  `copy ${p.gbps.toFixed(2)} GB/s (${p.gbpsRange.map((v) => v.toFixed(2)).join('-')})`;

export function variantsCell(r: Row): string {
  if (!r.registry) return '-';
  return r.variants.map((v) => (r.picks.includes(v) ? `**${v}**` : v)).join(', ');
}

/** How the times were taken (timing.ts's timeSource). */
export interface TimeMethod {
  source: 'timestamp' | 'wall';
  why: string;
}

export const methodLine = (t: TimeMethod) =>
  t.source === 'timestamp'
    ? 'Times: GPU time from timestamp queries (each dispatch in a timed pass of its own, summed per run); wall ms = the end-to-end time, wall clock around a queue sync of runs without the profiler (as many batches, alternating with the timed ones; for a run longer than the budget, its warm-up run); warm = median per run over batches, spread = (max - min) / median.'
    : `Times: wall clock around a queue sync (no timestamp queries: ${t.why}); warm = median per run over batches, spread = (max - min) / median.`;

export function markdown(rows: readonly Row[], peaks: PeakSummary, adapter: string, header: string[] = [], time: TimeMethod = { source: 'wall', why: 'not given' }): string {
  const spread = (p: PeakSummary) => (p.gflopsRange[1] / Math.max(p.gflopsRange[0], 1e-12)).toFixed(2);
  return [
    `Adapter: ${adapter}`,
    `Measured peaks (median): ${peakLine(peaks)}; FMA max/min ${spread(peaks)}x`,
    methodLine(time),
    `Check: max |GPU - float64 reference| / max |reference| over sampled outputs; (!) above ${ERR_FLAG}.`,
    ...header,
    '',
    '| # | kernel | variant | variants (pick in bold) | pick | cold ms | warm ms | wall ms | spread % | GFLOP/s | GB/s | % FMA peak | % copy peak | max rel err | note |',
    '|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map(
      (r, i) =>
        `| ${i + 1} | ${r.name} | ${r.variant} | ${variantsCell(r)} | ${r.picked ? (r.pickedBy ?? 'yes') : ''} | ${fmt(r.coldMs)} | ${fmt(r.warmMs, 2)} | ${fmt(r.wallMs ?? null, 2)} | ${fmt(r.spreadPct, 0)} | ${fmt(r.gflops, 3)} | ${fmt(r.gbps, 3)} | ${fmt(r.pctFmaPeak)} | ${fmt(r.pctCopyPeak)} | ${err(r.maxRelErr)} | ${r.note ?? ''} |`,
    ),
    '',
  ].join('\n');
}
