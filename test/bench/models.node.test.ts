// The model benchmarks (`--models --quick`: kernels-bench/models.ts on each model's tiny
// configuration, through the built package in dist/, which npm test builds first): the FLOP counter
// against hand counts of single layers, then every model row (V-Net, TransUNet, MedSAM encoder and
// decoder per box; forward and forward+backward) is measured and written to the JSON and Markdown,
// with FLOPs, the share of the FMA peak and peak memory filled in. Structure only: no timing is asserted.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { init, models, nn, noGrad, rand } from 'medseg';
import { countFlops, installFlopHooks } from '../../kernels-bench/flops.js';
import { modelName } from '../../kernels-bench/models.js';
import { runSuite } from '../../kernels-bench/suite.js';
import { nodeIO } from '../../kernels-bench/tune-cache.js';

describe('benchmark suite --models --quick', () => {
  it('counts 2 FLOPs per multiply-add of convs, linears and attention from their shapes', async () => {
    await init();
    installFlopHooks();
    const lin = new nn.Linear(4, 8);
    const conv = new nn.Conv3d(2, 3, 3, { padding: 1 });
    const convT = new nn.ConvTranspose3d(2, 3, 2, { stride: 2 });
    const std = new nn.StdConv2d(2, 4, 3);
    const attn = new models.TransUNetAttention(8, 2);
    const count = (f: () => unknown) => countFlops(() => noGrad(f)).flops;
    // [2, 3, 4] -> [2, 3, 8]: 6 rows x 8 outputs x 4 inputs
    expect(count(() => lin.forward(rand([2, 3, 4])))).toBe(2 * 6 * 8 * 4);
    // 3 x 4^3 outputs, each 2 x 27 taps
    expect(count(() => conv.forward(rand([1, 2, 4, 4, 4])))).toBe(2 * 3 * 64 * 2 * 27);
    // each of the 2 x 2^3 inputs scatters into 3 channels x 8 taps
    expect(count(() => convT.forward(rand([1, 2, 2, 2, 2])))).toBe(2 * 16 * 3 * 8);
    // StdConv2d counted once: 4 x 3 x 3 outputs, 2 x 9 taps
    expect(count(() => std.forward(rand([1, 2, 5, 5])))).toBe(2 * 4 * 9 * 2 * 9);
    // 4 projections of 5 tokens x 8 x 8, plus QK^T and AV: 2 x 2 x 5 x 5 x 8
    expect(count(() => attn.forward(rand([1, 5, 8])))).toBe(4 * 2 * 5 * 8 * 8 + 4 * 25 * 8);
    // not counting outside countFlops
    expect(countFlops(() => 0).flops).toBe(0);
  });

  it('measures every model part forward and forward+backward and writes the rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medseg-bench-models-'));
    const files = { json: join(dir, 'm.json'), md: join(dir, 'm.md'), svg: join(dir, 'm.svg') };
    const lines: string[] = [];
    const r = await runSuite({ io: nodeIO, families: [], models: true, quick: true, budget: 0.002, minBatches: 1, peakRuns: 1, noTuned: true, ...files, log: (l) => lines.push(l) });
    console.log(lines.filter((l) => l.startsWith('[') || l.startsWith('plan')).join('\n'));
    expect(r.rows).toEqual([]);
    const parts = ['V-Net tiny/2', 'TransUNet tiny', 'MedSAM tiny image encoder', 'MedSAM tiny decoder per box'];
    expect(r.modelRows.map((x) => `${modelName(x)} ${x.pass}`)).toEqual(parts.flatMap((p) => [`${p} forward`, `${p} forward+backward`]));
    expect(lines.some((l) => l.startsWith('plan: 8 model rows'))).toBe(true);
    for (const row of r.modelRows) {
      const what = `${modelName(row)} ${row.pass}`;
      for (const v of [row.coldMs, row.warmMs, row.gflop, row.gflops, row.pctFmaPeak, row.params]) expect(v, what).toBeGreaterThan(0);
      expect(row.runs, what).toBeGreaterThanOrEqual(1);
      // weights are live before the row; the row's peak holds at least them
      expect(row.baseMiB, what).toBeGreaterThan(0);
      expect(row.peakMiB, what).toBeGreaterThan(row.baseMiB);
    }
    for (let i = 0; i < r.modelRows.length; i += 2) {
      const [f, fb] = [r.modelRows[i], r.modelRows[i + 1]];
      expect(fb.gflop, modelName(f)).toBeCloseTo(3 * f.gflop, 9);
      expect(fb.peakMiB, modelName(f)).toBeGreaterThan(f.peakMiB);
    }
    const json = JSON.parse(readFileSync(files.json, 'utf8'));
    expect(json.complete).toBe(true);
    expect(json.modelRows.length).toBe(8);
    const md = readFileSync(files.md, 'utf8');
    for (const row of r.modelRows) expect(md).toContain(`| ${modelName(row)} | ${row.pass} | ${row.input} |`);
  });
});
