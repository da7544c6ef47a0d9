// Ctrl-C (SIGINT) and SIGTERM during a command: the user is told what was kept. Work that can stop
// cleanly (train: finish the step, write the weights so far) gets `stopping`, a message printed at
// once, and an AbortSignal it checks; the second signal, or the first where there is no `stopping`,
// prints `kept()` (what is on disk now) and exits with status 130.
import { CliError } from './args.js';

export interface InterruptOptions {
  log: (line: string) => void;
  /** what is on disk if the process stops now, e.g. "nothing was written" */
  kept: () => string;
  /** printed on the first signal when the work stops by itself at its next check */
  stopping?: string;
}

export interface Interrupt {
  signal: AbortSignal;
  /** removes the handlers (Node's default then applies again) */
  dispose(): void;
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export function watchInterrupt(o: InterruptOptions): Interrupt {
  const controller = new AbortController();
  const onSignal = () => {
    if (o.stopping && !controller.signal.aborted) {
      controller.abort();
      o.log(`medseg: interrupted: ${o.stopping}`);
      return;
    }
    o.log(`medseg: interrupted: ${o.kept()}`);
    process.exit(130);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const s of SIGNALS) process.off(s, onSignal);
    },
  };
}

/** The error a command ends with after stopping on an interrupt (exit status 130). */
export const interrupted = (what: string): CliError => new CliError(`interrupted: ${what}`, 130);

/**
 * Runs a segmentation that stops at its next check once `signal` aborts; `cleanup` (progress bar,
 * model weights) runs either way. A run that was interrupted, or that finished after the abort,
 * ends with "interrupted: nothing was written" (exit 130), so its caller writes no output.
 */
export async function segmentOrStop<T>(signal: AbortSignal | undefined, run: () => Promise<T>, cleanup: () => void): Promise<T> {
  let out: T;
  try {
    out = await run();
  } catch (e) {
    if (signal?.aborted) throw interrupted('nothing was written');
    throw e;
  } finally {
    cleanup();
  }
  if (signal?.aborted) throw interrupted('nothing was written');
  return out;
}
