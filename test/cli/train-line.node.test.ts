// The V-Net train commands README's command-line section gives for the bundled spleen scan. The
// default one (`npx medseg train --model vnet --config tiny --image ... --label ... -o ...`) gives no
// setting: the CLI's parsers and vnetTrainSettings turn it into the settings README's text states, and
// scripts/vnet-spleen.sh runs the same defaults with only its time limit, --save-every and --keep-best.
// The quick one is written in three places: README, the hint `segment` prints without --weights, and
// scripts/demo-spleen.mjs (`npm run demo:spleen`), where its mask Dice is measured; they must stay one
// command: README's line is the hint's (paths aside), the parsers read it to the demo's settings. Nothing
// here trains.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../../src/cli/main.js';
import { noWeightsMessage } from '../../src/cli/segment.js';
import { vnetTrainSettings, type TrainArgs } from '../../src/cli/train.js';
import { models } from '../../src/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const words = (line: string) => line.replace(/\\\n/g, ' ').trim().split(/\s+/);

/** README's V-Net `npx medseg train --model vnet ...` lines, continuation lines joined. */
function readmeTrainLines(): string[][] {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const lines = [...readme.matchAll(/^npx medseg train --model vnet (?:.*\\\n)*.*$/gm)].map((m) => words(m[0]));
  if (lines.length === 0) throw new Error('README.md has no `npx medseg train --model vnet` line');
  return lines;
}
/** The options (words starting with '-') of a command line. */
const flags = (argv: string[]) => argv.filter((w) => w.startsWith('-'));
const readmeDefaultLine = () => readmeTrainLines().find((l) => !l.includes('--steps'))!;
const readmeQuickLine = () => readmeTrainLines().find((l) => l.includes('--steps'))!;

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

describe("README's default train command", () => {
  it('README has two V-Net train lines: the default one and the quick one', () => {
    expect(readmeTrainLines()).toHaveLength(2);
    expect(readmeDefaultLine()).toBeDefined();
    expect(readmeQuickLine()).toBeDefined();
  });

  it('gives no setting beyond --model, --config, --image, --label and -o', () => {
    expect(flags(readmeDefaultLine()).sort()).toEqual(['--config', '--image', '--label', '--model', '-o']);
  });

  it("is parsed to the settings README's text states (the tiny preset's defaults)", async () => {
    const opts = await parsedTrain(readmeDefaultLine());
    const s = vnetTrainSettings({ ...(opts as unknown as TrainArgs), images: opts.image as string[], labels: opts.label as string[] });
    // "3.2 x 3.2 x 5 mm voxels and 32x48x48 patches (...), Adam lr 3e-3 with the poly decay over 240 steps,
    // random deformation sigma 1 voxel, no flips, seed 1"
    const readme = readFileSync(`${root}README.md`, 'utf8').replace(/\s+/g, ' ');
    const m = readme.match(/preset are the settings that work on the bundled spleen CT on a CPU adapter: ([\d.]+) x ([\d.]+) x ([\d.]+) mm voxels and (\d+)x(\d+)x(\d+) patches \([^)]*\), Adam lr ([\de.-]+) with the (\w+) decay over (\d+) steps, random deformation sigma ([\d.]+) voxel, (no flips|flips), seed (\d+)\./);
    expect(m, "README's sentence on the tiny preset's defaults").not.toBeNull();
    const n = (i: number) => Number(m![i]);
    expect(s).toMatchObject({
      preset: 'tiny',
      preprocessing: { spacing: [n(1), n(2), n(3)], patch: [n(4), n(5), n(6)], intensity: { kind: 'ct-window' } },
      lr: n(7),
      lrSchedule: m![8],
      steps: n(9),
      deformation: { sigma: n(10), cells: 2 },
      flip: m![11] === 'flips',
      seed: n(12),
      batchSize: 1,
    });
    expect(s.config).toMatchObject({ baseChannels: 4, variant: 'vnet.pytorch' });
    expect(opts).toMatchObject({ image: ['data/ct_spleen_msd09_crop.nii.gz'], label: ['data/ct_spleen_msd09_crop_label.nii.gz'] });
  });

  it('the paper preset has no default step count: without --steps it says so', async () => {
    const opts = await parsedTrain(readmeDefaultLine().map((w) => (w === 'tiny' ? 'paper' : w)));
    expect(() => vnetTrainSettings({ ...(opts as unknown as TrainArgs), images: opts.image as string[], labels: opts.label as string[] })).toThrow('--steps is needed with --config paper (only tiny has a default, 240)');
  });

  it('given options win over the defaults; --resume of tiny weights takes the tiny defaults without --config', async () => {
    const given = ['--flip', '--lr', '1e-3', '--lr-schedule', 'constant', '--deform-sigma', '0', '--steps', '5', '--spacing', '6.4,6.4,10', '--patch', '16,32,32', '--seed', '3'];
    const opts = await parsedTrain([...readmeDefaultLine(), ...given]);
    const s = vnetTrainSettings({ ...(opts as unknown as TrainArgs), images: opts.image as string[], labels: opts.label as string[] });
    expect(s).toMatchObject({ preset: 'tiny', lr: 1e-3, lrSchedule: 'constant', deformation: null, flip: true, steps: 5, seed: 3, preprocessing: { spacing: [6.4, 6.4, 10], patch: [16, 32, 32] } });
    const tiny = models.vnetMetadata(models.vnetConfig({ preset: 'tiny' }), models.VNET_PREPROCESSING.tiny);
    const resumed = vnetTrainSettings({ images: ['a.nii.gz'], labels: ['b.nii.gz'], output: 'w.safetensors', resume: 'w.safetensors' }, tiny);
    expect(resumed).toMatchObject({ preset: 'tiny', steps: 240, lr: 3e-3, lrSchedule: 'poly', flip: false, deformation: { sigma: 1 } });
    // a config that is no preset's (other base channels): --config's defaults, paper's without it
    const other = models.vnetMetadata(models.vnetConfig({ preset: 'tiny', baseChannels: 2 }), models.VNET_PREPROCESSING.tiny);
    expect(vnetTrainSettings({ images: ['a.nii.gz'], labels: ['b.nii.gz'], output: 'w.safetensors', steps: 1 }, other)).toMatchObject({ preset: 'paper', lr: 1e-3, flip: true });
  });

  it('MedSAM and TransUNet still need --steps, said before any file is read', async () => {
    for (const model of ['medsam', 'transunet']) {
      await expect(buildProgram().exitOverride().parseAsync(['node', 'medseg', 'train', '--model', model, '--image', 'missing.png', '--label', 'missing.png', '-o', 'w.safetensors'])).rejects.toThrow(`train --model ${model} needs --steps N`);
    }
  });

  it('scripts/vnet-spleen.sh trains with the defaults: only --save-every and --keep-best on top', () => {
    const script = readFileSync(`${root}scripts/vnet-spleen.sh`, 'utf8');
    const m = script.match(/^timeout .*main\.js" train (?:.*\\\n)*.*$/m);
    expect(m, 'the script has a train command').not.toBeNull();
    const argv = words(m![0]).slice(words(m![0]).indexOf('train') + 1);
    expect(flags(argv).filter((f) => f !== '2>&1').sort()).toEqual(['--config', '--image', '--keep-best', '--label', '--model', '--save-every', '-o']);
    expect(argv.slice(0, 4)).toEqual(['--model', 'vnet', '--config', 'tiny']);
  });
});

describe('the quick train command (a minute on the bundled scan)', () => {
  it("README's quick line is the one segment prints without --weights", () => {
    const hint = noWeightsMessage(root).split('\n').find((l) => l.includes('medseg train'))!;
    expect(readmeQuickLine()).toEqual(words(hint));
  });

  it("the CLI's parsers read it to the settings of scripts/demo-spleen.mjs", async () => {
    const opts = await parsedTrain(readmeQuickLine());
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
