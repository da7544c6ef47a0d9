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
 * The end of a training command's step loop (MedSAM, TransUNet): nothing is written when no step
 * finished; otherwise the weights are written, the model freed, and a loop stopped early ends with
 * the interrupt message saying which step the file holds.
 */
export async function finishTraining(o: { stepsDone: number; steps: number; output: string; write: () => Promise<{ replaced: boolean }>; dispose: () => void }): Promise<{ replaced: boolean }> {
  if (o.stepsDone === 0) {
    o.dispose();
    throw interrupted('no step had finished: nothing was written');
  }
  const { replaced } = await o.write();
  o.dispose();
  if (o.stepsDone < o.steps) throw interrupted(`${replaced ? 'replaced' : 'wrote'} ${o.output} with the weights after step ${o.stepsDone} of ${o.steps}`);
  return { replaced };
}

/** How many of the last steps a training command's summary averages. */
export const LAST_STEPS = 5;

/** The mean of `f` over the last LAST_STEPS steps (fewer when fewer ran). */
export function lastStepsMean<T>(history: readonly T[], f: (h: T) => number): number {
  const tail = history.slice(-Math.min(LAST_STEPS, history.length));
  return tail.reduce((a, h) => a + f(h), 0) / tail.length;
}

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
