// Node-only: `medseg convert` end to end on files (output appears only when complete; a failed
// conversion leaves neither output nor temp file), and load() of the Node entry from a file path,
// which the main entry's weights.load() refuses with a pointer to it.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { runConvert } from '../../src/cli/convert.js';
import { weights } from '../../src/index.js';
import { FileSink, load } from '../../src/node.js';
import { ready } from '../helpers.js';
import { manifestTensors, writePth } from '../fixtures/make-checkpoints.js';

const dir = mkdtempSync(join(tmpdir(), 'medseg-weights-'));
beforeAll(ready);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('medseg convert (files)', () => {
  it('converts a V-Net checkpoint to a file and says which schema it found', async () => {
    // Reduced-size shapes (scaled schemas); the full-size run is test/fixtures/full-size-medsam.ts.
    const ts = manifestTensors(weights.manifests.vnet_monai.tensors, 16);
    const schemas = weights.schemasFor('vnet').map((s) => weights.scaledSchema(s, 16));
    const input = join(dir, 'vnet_monai.pth');
    writeFileSync(input, writePth(ts, { prefix: 'vnet_monai' }));
    const lines: string[] = [];
    const out = join(dir, 'vnet.safetensors');
    await runConvert({ checkpoint: input, output: out, model: 'vnet', dtype: 'f16', progress: false, log: (l) => lines.push(l), schemas });
    expect(lines.join('\n')).toMatch(/schema 'vnet_monai\/16'/);
    const f = await weights.readSafetensors(readFileSync(out));
    expect(f.tensors.length).toBe(ts.filter((t) => !t.name.endsWith('num_batches_tracked')).length);
    expect(f.metadata).toMatchObject({ model: 'vnet', schema: 'vnet_monai/16', dtype: 'f16' });
    expect(readdirSync(dir).filter((n) => n.endsWith('.partial'))).toEqual([]);
  });

  it('writes nothing when the checkpoint does not match, and reports the problem', async () => {
    const ts = manifestTensors(weights.manifests.vnet_monai.tensors.slice(0, 20), 1);
    const input = join(dir, 'partial.pth');
    writeFileSync(input, writePth(ts));
    const out = join(dir, 'never.safetensors');
    const program = buildProgram().exitOverride();
    await expect(program.parseAsync(['node', 'medseg', 'convert', input, '-o', out, '--model', 'vnet', '--no-progress'])).rejects.toThrow(/missing/);
    expect(readdirSync(dir).filter((n) => n.startsWith('never') || n.includes('.never.'))).toEqual([]);
  });

  it('rejects an unknown --model', async () => {
    const program = buildProgram();
    for (const c of [program, ...program.commands]) c.exitOverride().configureOutput({ writeErr: () => {} });
    await expect(program.parseAsync(['node', 'medseg', 'convert', 'x.pth', '-o', 'y', '--model', 'unet'])).rejects.toThrow(/unet/);
  });

  it('a file sink leaves nothing behind on abort and renames on close', async () => {
    const a = new FileSink(join(dir, 'a.bin'));
    await a.write(new Uint8Array([1, 2, 3]));
    await a.abort();
    const b = new FileSink(join(dir, 'b.bin'));
    await b.write(new Uint8Array([4, 5]));
    expect(readdirSync(dir)).not.toContain('b.bin');
    await b.close();
    expect([...readFileSync(join(dir, 'b.bin'))]).toEqual([4, 5]);
    expect(readdirSync(dir).filter((n) => n.endsWith('.partial') || n === 'a.bin')).toEqual([]);
  });

  it('load from medseg/node reads a converted file from a path; weights.load says to use it', async () => {
    await expect(weights.load(join(dir, 'vnet.safetensors'))).rejects.toThrow(/medseg\/node/);
    const w = await load(join(dir, 'vnet.safetensors'), { filter: (k) => k === 'out_tr.conv2.bias' });
    const t = w.tensors.get('out_tr.conv2.bias')!;
    expect(t.shape).toEqual([2]);
    const want = manifestTensors([['out_tr.conv2.bias', [2]]], 1)[0].values;
    expect([...(await t.read())]).toEqual([...want]);
    t.dispose();
  });
});
