// The benchmark's command line: `npm run bench -- [FAMILY ...] [--models [MODEL ...]] [--forward-only | --backward-only] [--quick] [--full] [--tune]
// [--no-tuned] [--wall] [--browser] [--compare | --compare-only] [--out DIR | --json FILE --md FILE --svg
// FILE] [--budget S]`. Runs suite.ts in Node (Dawn; MEDSEG_ADAPTER picks the adapter) or, with
// --browser, in Chromium (browser/run.ts); --models runs the model benchmarks (models.ts; alone,
// or after the FAMILY ... given); --compare then
// runs compare/ (medseg, TensorFlow.js and ONNX Runtime Web on single ops in Chromium) and writes
// <base>-compare.json and .md. With --out DIR it writes DIR/bench-<adapter>.json,
// .md and .svg (the roofline); --json FILE alone also puts the .md and .svg next to it. Ctrl-C
// stops after saying what was kept (the files are rewritten after every row).
import { FAMILIES, runSuite, type SuiteOptions } from './suite.js';
import { MODEL_KEYS } from './models.js';
import { nodeIO } from './tune-cache.js';

const USAGE = `usage: npm run bench -- [${Object.keys(FAMILIES).join('|')} ...] [--models [MODEL ...]] [--forward-only | --backward-only] [--quick] [--full] [--tune] [--no-tuned] [--browser] [--compare | --compare-only] [--out DIR] [--json FILE] [--md FILE] [--svg FILE] [--budget SECONDS]
  --models [vnet|transunet|medsam ...]  each model's forward and forward+backward (V-Net paper
              128x128x64, TransUNet 224x224, MedSAM vit_b encoder 1024x1024 and decoder per box;
              random weights), alone or after the FAMILY ... given; --forward-only: no backward;
              --backward-only: only forward+backward
  --quick     small shapes of every family (a smoke run, under two minutes on a CPU adapter);
              with --models the tiny model configurations
  --full      also the cases a CPU adapter skips
  --tune      re-measure the tuned variant table (matmul, conv, attention) for this adapter
  --no-tuned  default rules only (ignore the cached or shipped tuned table)
  --wall      wall time around a sync even where the adapter has timestamp queries (GPU time otherwise)
  --out DIR   write DIR/bench-<adapter>.json, .md and .svg (roofline)
  --compare   then the same single ops through TF.js (WebGPU) and ONNX Runtime Web (JSEP and native
              WebGPU EPs) in Chromium (SwiftShader; MEDSEG_BROWSER_GPU=1: the real GPU)
  --compare-only  the comparison alone
  --browser   run the suite in Chromium (Playwright; SwiftShader, or the real GPU with MEDSEG_BROWSER_GPU=1)`;

type Args = Omit<SuiteOptions, 'io'> & { out?: string; compare?: boolean; compareOnly?: boolean; browser?: boolean };

function parseArgs(argv: string[]): Args {
  const families: string[] = [];
  const o: Args = { families };
  const value = (i: number, a: string) => {
    const v = argv[i];
    if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = value(++i, a);
    else if (a === '--md') o.md = value(++i, a);
    else if (a === '--svg') o.svg = value(++i, a);
    else if (a === '--out') o.out = value(++i, a);
    else if (a === '--budget') {
      o.budget = Number(value(++i, a));
      if (!(o.budget > 0)) throw new Error(`--budget: a positive number of seconds, got ${argv[i]}`);
    } else if (a === '--full') o.full = true;
    else if (a === '--models') {
      // optionally followed by model names: --models transunet medsam
      const names: string[] = [];
      while (MODEL_KEYS.includes(argv[i + 1])) names.push(argv[++i]);
      o.models = names.length ? names : true;
    } else if (a === '--forward-only') o.passes = ['forward'];
    else if (a === '--backward-only') o.passes = ['forward+backward'];
    else if (a === '--quick') o.quick = true;
    else if (a === '--tune') o.tune = true;
    else if (a === '--no-tuned') o.noTuned = true;
    else if (a === '--wall') o.wall = true;
    else if (a === '--compare') o.compare = true;
    else if (a === '--browser') o.browser = true;
    else if (a === '--compare-only') o.compare = o.compareOnly = true;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}\n${USAGE}`);
    else if (!(a in FAMILIES)) throw new Error(`unknown kernel family '${a}' (known: ${Object.keys(FAMILIES).join(', ')})`);
    else families.push(a);
  }
  if (!families.length && !o.models) families.push(...Object.keys(FAMILIES));
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.json && !o.md) o.md = o.json.replace(/\.json$/, '') + '.md';
  if (o.json && !o.svg) o.svg = o.json.replace(/\.json$/, '') + '.svg';
  if (o.out) {
    const { mkdirSync } = await import('node:fs');
    const { adapterKey, init } = await import('medseg/gpu');
    await init();
    mkdirSync(o.out, { recursive: true });
    const base = `${o.out}/bench-${adapterKey()}${o.quick ? '-quick' : ''}`;
    o.json ??= `${base}.json`;
    o.md ??= `${base}.md`;
    o.svg ??= `${base}.svg`;
  }
  process.once('SIGINT', () => {
    const kept = [o.json, o.md, o.svg].filter(Boolean).join(', ');
    console.error(`\ninterrupted; ${kept ? `${kept} hold what was measured` : 'nothing kept (--out DIR or --json FILE keeps results)'}`);
    process.exit(130);
  });
  if (!o.compareOnly) {
    if (o.browser) {
      const { runSuiteInBrowser } = await import('./browser/run.js');
      const { out: _out, compare: _c, compareOnly: _co, browser: _b, ...suite } = o;
      await runSuiteInBrowser(suite);
    } else await runSuite({ ...o, io: nodeIO });
  }
  if (o.compare) {
    const { runCompareInBrowser } = await import('./compare/run.js');
    const base = o.json ? `${o.json.replace(/\.json$/, '')}-compare` : o.out ? `${o.out}/compare` : undefined;
    await runCompareInBrowser({ budget: o.budget, base });
    if (base) console.log(`comparison written to ${base}.json and ${base}.md`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
