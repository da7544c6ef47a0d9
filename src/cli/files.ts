// The files the CLI reads and writes. Inputs are checked (there, a file, not empty) and read before
// any GPU work; outputs are checked before any work (a name the command writes, a folder that exists
// and is writable, not one of the inputs under any spelling: same file = same device and inode, so
// symlinks, hard links and ../ detours are caught) and written atomically: a temporary file in the
// same folder, renamed over the target, so a crash or Ctrl-C never leaves half a file.
import { accessSync, constants, readFileSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CliError } from './args.js';

const statOrNull = (path: string): Stats | null => {
  try {
    return statSync(path);
  } catch {
    return null;
  }
};

/** Checks that `path` is a readable, non-empty file; `what` names it in messages ("input scan"). */
export function checkInput(path: string, what: string): Stats {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CliError(`${what} ${path}: no such file`);
    if (code === 'EACCES') throw new CliError(`${what} ${path}: permission denied`);
    throw new CliError(`${what} ${path}: ${(e as Error).message}`);
  }
  if (st.isDirectory()) throw new CliError(`${what} ${path} is a folder, not a file`);
  if (!st.isFile()) throw new CliError(`${what} ${path} is not a regular file`);
  if (st.size === 0) throw new CliError(`${what} ${path} is empty (0 bytes)`);
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw new CliError(`${what} ${path}: permission denied`);
  }
  return st;
}

/** checkInput, then the whole file. */
export function readInput(path: string, what: string): Uint8Array {
  checkInput(path, what);
  return readFileSync(path);
}

export interface OutputCheck {
  /** what the output is, for messages ("output mask") */
  what: string;
  /** accepted endings, lower case, e.g. ['.nii.gz', '.nii'] */
  extensions: readonly string[];
  /** files the command reads, which the output must not be: [what, path] pairs */
  inputs?: readonly (readonly [string, string])[];
}

/** Refuses an output the command cannot or must not write; returns whether it exists now. */
export function checkOutput(path: string, check: OutputCheck): { exists: boolean } {
  const { what } = check;
  if (!check.extensions.some((e) => path.toLowerCase().endsWith(e))) {
    throw new CliError(`${what} ${path}: the name must end in ${check.extensions.join(' or ')}`);
  }
  const dir = dirname(resolve(path));
  const d = statOrNull(dir);
  if (!d) throw new CliError(`${what} ${path}: folder ${dirname(path)} does not exist`);
  if (!d.isDirectory()) throw new CliError(`${what} ${path}: ${dirname(path)} is not a folder`);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw new CliError(`${what} ${path}: folder ${dirname(path)} is not writable`);
  }
  const out = statOrNull(path);
  if (out?.isDirectory()) throw new CliError(`${what} ${path} is a folder; give a file name inside it`);
  if (out) {
    for (const [name, input] of check.inputs ?? []) {
      const i = statOrNull(input);
      if (i && i.dev === out.dev && i.ino === out.ino) throw new CliError(`${what} ${path} is the ${name} (${input}): refusing to write over it; choose another output`);
    }
  }
  return { exists: out !== null };
}

/** The temporary name writeAtomic uses for `path`: hidden, in the same folder, unique per process. */
export const tempPathFor = (path: string): string => join(dirname(path), `.${basename(path)}.${process.pid}.partial`);

/** Writes `bytes` to a temporary file beside `path`, then renames it into place; says whether a file was replaced. */
export function writeAtomic(path: string, bytes: Uint8Array): { replaced: boolean } {
  const replaced = statOrNull(path) !== null;
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`writing ${path}: ${(e as Error).message}`);
  }
  return { replaced };
}
