// Argument checks shared by the subcommands. Commander hands option values over as the strings the
// user typed; these turn them into numbers or refuse them with a message that names the option, what
// it must be and what it got ("--steps must be a whole number ≥ 1, got '1.5'"), before any file is
// read or the GPU opens. CliError is an error the CLI explains itself (a mistake in the arguments or
// files, an interrupt): main.ts prints its message after "medseg: " and exits with its status.

export class CliError extends Error {
  constructor(
    message: string,
    /** the process exit code: 1 for a mistake, 130 for an interrupt */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const WHOLE = /^\+?\d+$/;

const shown = (v: unknown) => `'${String(v)}'`;

/** The parts of a number list ('3.2,3.2,5' split, or numbers given programmatically) as numbers: a string that is not a decimal number ('abc', '1e3x', '') is NaN. */
export function numbersOf(parts: readonly (string | number)[]): number[] {
  return parts.map((p) => (typeof p === 'number' ? p : NUMBER.test(p.trim()) ? Number(p) : NaN));
}

/** A whole number ≥ min, from a string or (programmatic use) a number. */
export function wholeNumber(option: string, value: string | number, min = 1): number {
  const n = typeof value === 'number' ? value : WHOLE.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new CliError(`${option} must be a whole number ≥ ${min}, got ${shown(value)}`);
  return n;
}

/** A finite number > 0 (or ≥ 0 with allowZero). */
export function positiveNumber(option: string, value: string | number, { allowZero = false } = {}): number {
  const n = typeof value === 'number' ? value : NUMBER.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !allowZero)) throw new CliError(`${option} must be a number ${allowZero ? '≥' : '>'} 0, got ${shown(value)}`);
  return n;
}

/** Three positive numbers such as '3.2,3.2,5' (commas or x between them). */
export function positiveTriple(option: string, value: string | readonly number[]): [number, number, number] {
  const v = numbersOf(typeof value === 'string' ? value.split(/[,x]/) : value);
  if (v.length !== 3 || v.some((n) => !Number.isFinite(n) || n <= 0)) throw new CliError(`${option} must be three numbers > 0 like 1.6,1.6,2.5, got ${shown(value)}`);
  return v as [number, number, number];
}

/** A V-Net patch: three whole multiples of 16 such as '32,48,48' (D,H,W voxels). */
export function patchTriple(option: string, value: string | readonly number[]): [number, number, number] {
  const parts = typeof value === 'string' ? value.split(/[,x]/) : value;
  const v = parts.map((p) => (typeof p === 'number' ? p : WHOLE.test(p.trim()) ? Number(p) : NaN));
  if (v.length !== 3 || v.some((n) => !Number.isSafeInteger(n) || n <= 0 || n % 16 !== 0)) {
    throw new CliError(`${option} must be three whole multiples of 16 (D,H,W voxels) like 32,48,48, got ${shown(value)}`);
  }
  return v as [number, number, number];
}

/** One of a fixed list of words. */
export function oneOf<T extends string>(option: string, value: string, choices: readonly T[]): T {
  if (!choices.includes(value as T)) throw new CliError(`${option} must be ${choices.slice(0, -1).join(', ')}${choices.length > 1 ? ' or ' : ''}${choices[choices.length - 1]}, got ${shown(value)}`);
  return value as T;
}
