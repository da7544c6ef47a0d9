// The benchmark's quick suite as a CI smoke test (kernels-bench/suite.ts with quick: every family
// at small shapes, through the built package in dist/, which npm test builds first): every planned
// row is measured and its output matches the float64 reference (the correctness column), every
// registry row lists the variants and the pick, and the JSON, Markdown and SVG roofline are
// written. No timing is asserted. Also: the check's error measure flags a wrong value and spreads
// its samples.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { relErr, sampleIndices } from '../../kernels-bench/check.js';
import { ERR_FLAG } from '../../kernels-bench/report.js';
import { FAMILIES, runSuite } from '../../kernels-bench/suite.js';
import { nodeIO } from '../../kernels-bench/tune-cache.js';

describe('benchmark suite --quick', () => {
  it('the check measure sees a wrong value and samples both ends', () => {
    expect(relErr([1, 2, 3], [1, 2, 3])).toBe(0);
    expect(relErr([1, 2.3, 3], [1, 2, 3])).toBeCloseTo(0.1, 6);
    expect(relErr([1, NaN], [1, 2])).toBe(Infinity);
    const s = sampleIndices(1e6, 20);
    expect(new Set(s).size).toBe(20);
    expect([s[0], s[19]]).toEqual([0, 1e6 - 1]);
  });

  it('runs every family, checks every row against the reference, and writes JSON, Markdown and SVG', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medseg-bench-'));
    const files = { json: join(dir, 'q.json'), md: join(dir, 'q.md'), svg: join(dir, 'q.svg') };
    const lines: string[] = [];
    // The variants whose pipelines take seconds to compile on a CPU adapter (the fused attention
    // kernels, forward and backward, and the tiled conv in each tile size) are left out to keep the
    // run short: their results are checked by tune.test.ts and test/ops; the rows list them all the same.
    const skipVariants = { attention: ['fused', 'fused-specialised'], conv: ['tiled', 'tiled-k32', 'tiled-m16'] };
    const r = await runSuite({ io: nodeIO, families: Object.keys(FAMILIES), quick: true, budget: 0.002, minBatches: 1, peakRuns: 1, noTuned: true, skipVariants, ...files, log: (l) => lines.push(l) });
    console.log(lines.filter((l) => l.startsWith('[') || l.startsWith('peaks')).join('\n'));
    expect(new Set(r.rows.map((x) => x.family))).toEqual(new Set(Object.keys(FAMILIES)));
    for (const row of r.rows) {
      const what = `${row.name} [${row.variant}]`;
      expect(row.warmMs, what).not.toBeNull();
      expect(row.maxRelErr, what).not.toBeNull();
      expect(row.maxRelErr!, what).toBeLessThan(ERR_FLAG);
      if (row.registry) {
        expect(row.variants, what).toContain(row.variant);
        expect(row.picks.length, what).toBeGreaterThan(0);
        for (const p of row.picks) expect(row.variants, what).toContain(p);
        expect(row.picked, what).toBe(row.picks.includes(row.variant));
        for (const v of skipVariants[row.registry as keyof typeof skipVariants] ?? []) if (row.variants.includes(v)) expect(row.note, what).toContain(`${v} not run`);
        expect(row.pickedBy, what).toBe(row.picked ? 'rule' : null);
      }
    }
    // every registry case timed each of its variants once
    for (const name of new Set(r.rows.filter((x) => x.registry).map((x) => x.name))) {
      const of = r.rows.filter((x) => x.name === name);
      const skipped: string[] = [...(skipVariants[of[0].registry as keyof typeof skipVariants] ?? []), ...of[0].variants.filter((v) => of[0].note?.includes(`${v} not run`))];
      expect(of.map((x) => x.variant).sort(), name).toEqual(of[0].variants.filter((v) => !skipped.includes(v)).sort());
    }
    expect(r.rows.filter((x) => x.registry === 'conv' && x.variant === 'direct').length).toBeGreaterThan(0);
    const json = JSON.parse(readFileSync(files.json, 'utf8'));
    expect(json.complete).toBe(true);
    expect(json.rows.length).toBe(r.rows.length);
    expect(json.peaks.gflops).toBeGreaterThan(0);
    const md = readFileSync(files.md, 'utf8');
    for (const row of r.rows) expect(md).toContain(`| ${row.name} | ${row.variant} |`);
    const svg = readFileSync(files.svg, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<circle cx/g)?.length).toBe(r.rows.length + new Set(r.rows.map((x) => x.family)).size);
    expect(svg).toContain('FMA peak');
  });
});
