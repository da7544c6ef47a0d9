#!/usr/bin/env node
// `medseg` command line. Each subcommand lives in its own file in src/cli/ and exports a
// `register(program)` that adds itself; add new ones (segment, train, bench) to `commands`.
import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { realpathSync } from 'node:fs';
import * as convertCommand from './convert.js';
import * as segmentCommand from './segment.js';
import * as trainCommand from './train.js';

const commands: { register(program: Command): void }[] = [convertCommand, segmentCommand, trainCommand];

export function buildProgram(): Command {
  const program = new Command('medseg').description('WebGPU medical segmentation: V-Net, TransUNet, MedSAM').version('0.1.0');
  for (const c of commands) c.register(program);
  return program;
}

const isMain = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (isMain) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      process.stderr.write(`medseg: ${(e as Error).message}\n`);
      process.exitCode = 1;
    });
}
