#!/usr/bin/env node
// `medseg` command line. Each subcommand lives in its own file in src/cli/ and exports a
// `register(program)` that adds itself; add new ones to `commands`. Run as a program, it re-runs
// itself in a child whose stderr drops the GPU drivers' start-up noise (filtered-child.ts) and prints
// a failed command's message as one line: "medseg: <what is wrong>".
import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { realpathSync } from 'node:fs';
import * as convertCommand from './convert.js';
import * as segmentCommand from './segment.js';
import * as trainCommand from './train.js';
import { CliError } from './args.js';
import { runFilteredChild } from './filtered-child.js';

const commands: { register(program: Command): void }[] = [convertCommand, segmentCommand, trainCommand];

export function buildProgram(): Command {
  const program = new Command('medseg')
    .description(
      'WebGPU medical image segmentation: V-Net (train on NIfTI scans and labels, segment a scan), MedSAM (segment a slice, a slice range ' +
        'or a PNG / JPEG from a box prompt; fine-tune on labelled slices or images) and TransUNet (segment a CT volume slice by slice, ' +
        'a slice or a PNG / JPEG with trained weights; fine-tune from the ImageNet-21k encoder or trained weights), and convert V-Net (vnet.pytorch, MONAI), MedSAM and TransUNet checkpoints to safetensors.',
    )
    .version('0.1.0');
  for (const c of commands) c.register(program);
  return program;
}

/** Runs the command line in this process; resolves with the exit status. */
export async function runCli(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    const message = (e as Error).message.replace(/^medseg:\s*/, '');
    process.stderr.write(`medseg: ${message}\n`);
    return e instanceof CliError ? e.exitCode : 1;
  }
}

const isMain = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (isMain) {
  const run = process.env.MEDSEG_CLI_CHILD ? runCli(process.argv) : runFilteredChild();
  void run.then((code) => {
    process.exitCode = code;
  });
}
