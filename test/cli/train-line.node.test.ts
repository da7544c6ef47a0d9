// The train command that works on the bundled spleen scan is written in three places: README's
// command-line section, the hint `segment` prints without --weights, and scripts/demo-spleen.mjs
// (`npm start`), where its mask Dice is measured. They must stay one command: README's line is the
// hint's (paths aside), the CLI's own parsers read it to the demo's settings, and nothing in it runs.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../../src/cli/main.js';
import { noWeightsMessage } from '../../src/cli/segment.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const words = (line: string) => line.replace(/\\\n/g, ' ').trim().split(/\s+/);

/** README's V-Net `npx medseg train --model vnet ...` line, continuation lines joined. */
function readmeTrainLine(): string[] {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const m = readme.match(/^npx medseg train --model vnet (?:.*\\\n)*.*$/m);
  if (!m) throw new Error('README.md has no `npx medseg train --model vnet` line');
  return words(m[0]);
}

/** What the train command's parsers make of argv (its action replaced: nothing opens or trains). */
async function parsedTrain(argv: string[]): Promise<Record<string, unknown>> {
  const program = buildProgram().exitOverride();
  const train = program.commands.find((c) => c.name() === 'train')!;
  let opts: Record<string, unknown> | undefined;
  train.action((o: Record<string, unknown>) => {
    opts = o;
  });
  await program.parseAsync(['node', ...argv.slice(1)]);
  return opts!;
}

describe("the train command that works on the bundled scan", () => {
  it("README's line is the one segment prints without --weights", () => {
    const hint = noWeightsMessage(root).split('\n').find((l) => l.includes('medseg train'))!;
    expect(readmeTrainLine()).toEqual(words(hint));
  });

  it("the CLI's parsers read it to the settings of scripts/demo-spleen.mjs", async () => {
    const opts = await parsedTrain(readmeTrainLine());
    const demo = readFileSync(`${root}scripts/demo-spleen.mjs`, 'utf8');
    const demoArg = (name: string) => demo.match(new RegExp(`arg\\('${name}', '?([^')]+)'?\\)`))?.[1];
    const triple = (s?: string) => s?.split(',').map(Number);
    expect(opts).toMatchObject({
      model: 'vnet',
      config: 'tiny',
      spacing: triple(demoArg('--spacing')),
      patch: triple(demoArg('--patch')),
      lr: Number(demoArg('--lr')),
      steps: Number(demoArg('--max-steps')),
      flip: false,
      deformSigma: 0,
      seed: 7,
      image: ['data/ct_spleen_msd09_crop.nii.gz'],
      label: ['data/ct_spleen_msd09_crop_label.nii.gz'],
    });
    // the demo: the tiny preset, seed 7 for initialisation and sampling, no flips, no deformation
    expect(demo).toContain("models.vnetConfig({ preset: 'tiny' })");
    expect(demo).toMatch(/manualSeed\(7\)[\s\S]*patchRandom\(7\)/);
    expect(demo).toContain('{ flip: false, deformation: null }');
  });
});
