// --compare's Node side: bundles compare/page.ts (medseg from dist/, TensorFlow.js) with esbuild,
// serves it and ONNX Runtime Web's files from the repository over localhost (cross-origin isolated),
// opens it in Chromium through Playwright with scripts/system.mjs's flags (SwiftShader, or the
// real GPU with MEDSEG_BROWSER_GPU=1) and collects the per-op results: each library's warm and cold
// time and its error against the float64 reference, the ratio medseg / fastest peer, and what a
// library could not run. Writes JSON and Markdown.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ERR_FLAG } from '../report.js';
import { bundle, openPage, root } from '../browser-host.js';
import type { PeerResult } from './page.js';

const PEERS = ['tfjs-webgpu', 'ort-jsep', 'ort-webgpu'];

export interface CompareRow {
  op: string;
  /** library -> warm ms (null: could not run) */
  ms: Record<string, number | null>;
  errors: Record<string, number | null>;
  failures: Record<string, string>;
  /** medseg warm / the fastest peer's warm among peers whose result passed the check (below 1: medseg faster) */
  ratio: number | null;
  fastestPeer: string | null;
}

export function compareRows(results: PeerResult[]): CompareRow[] {
  const ops = [...new Set(results.map((r) => r.op))];
  return ops.map((op) => {
    const of = results.filter((r) => r.op === op);
    const ms: Record<string, number | null> = {};
    const errors: Record<string, number | null> = {};
    const failures: Record<string, string> = {};
    for (const r of of) {
      ms[r.lib] = r.error ? null : r.warmMs!;
      errors[r.lib] = r.error ? null : r.maxRelErr!;
      if (r.error) failures[r.lib] = r.error;
    }
    const peers = PEERS.filter((p) => ms[p] != null && errors[p]! <= ERR_FLAG).sort((a, b) => ms[a]! - ms[b]!);
    const fastestPeer = peers[0] ?? null;
    const ratio = fastestPeer && ms.medseg != null ? ms.medseg / ms[fastestPeer]! : null;
    return { op, ms, errors, failures, ratio, fastestPeer };
  });
}

export function compareMarkdown(rows: CompareRow[], adapter: string, notes: string[]): string {
  const libs = ['medseg', ...PEERS];
  const cell = (r: CompareRow, l: string) =>
    r.ms[l] == null
      ? `cannot run${r.failures[l] ? `: ${r.failures[l].replace(/\|/g, '/')}` : ''}`
      : `${r.ms[l]!.toFixed(2)} (err ${r.errors[l]!.toExponential(1)}${r.errors[l]! > ERR_FLAG ? ', WRONG' : ''})`;
  return [
    `Comparison on ${adapter} (Chromium, WebGPU): warm ms per op (median over batches, a batch ends by reading the last output back), max relative error against the float64 reference in brackets; WRONG above ${ERR_FLAG}, and a wrong result is never the fastest peer.`,
    ...notes,
    '',
    `| op | ${libs.join(' | ')} | medseg / fastest peer |`,
    `|---|${libs.map(() => '---:').join('|')}|---:|`,
    ...rows.map((r) => `| ${r.op} | ${libs.map((l) => cell(r, l)).join(' | ')} | ${r.ratio === null ? '-' : `${r.ratio.toFixed(2)} (${r.fastestPeer})`} |`),
    '',
  ].join('\n');
}

/** Runs the comparison in Chromium; writes `${base}.json` and `${base}.md` when base is given. */
export async function runCompareInBrowser(options: { budget?: number; base?: string; log?: (s: string) => void } = {}): Promise<{ adapter: string; rows: CompareRow[]; results: PeerResult[] }> {
  const log = options.log ?? ((s: string) => console.log(s));
  const pageFile = 'dist-bench/compare-page.js';
  await bundle(join(root, 'kernels-bench/compare/page.ts'), join(root, pageFile));
  const { browser, page, close } = await openPage(pageFile, 'runCompare', log);
  try {
    const budget = options.budget ?? 0.3;
    const out = (await page.evaluate(
      (b) => (globalThis as unknown as { runCompare: (b: number, log: (s: string) => void) => Promise<unknown> }).runCompare(b, (s) => console.log(s)),
      budget,
    )) as { adapter: string; results: PeerResult[] };
    const rows = compareRows(out.results);
    const notes = [...new Set(out.results.filter((r) => r.note).map((r) => `${r.lib}: ${r.note}`))];
    if (options.base) {
      await writeFile(`${options.base}.json`, JSON.stringify({ adapter: out.adapter, browser: browser.version(), rows, results: out.results, date: new Date().toISOString() }, null, 2) + '\n');
      await writeFile(`${options.base}.md`, compareMarkdown(rows, `${out.adapter} (Chromium ${browser.version()})`, notes));
    }
    log(compareMarkdown(rows, out.adapter, notes));
    return { adapter: out.adapter, rows, results: out.results };
  } finally {
    await close();
  }
}
