// The step loop of the fine-tuning train commands (MedSAM, TransUNet): runs `step` until `steps` have
// finished or the signal aborts (Ctrl-C: the current step finishes first), with the progress on stderr
// (the step's own text and the seconds per step), then ends through finishTraining: the weights and
// their metadata written atomically (nothing when no step finished), the model freed, and a loop that
// stopped early ends with the interrupt message naming the step the file holds. A step that throws
// frees the model and rethrows.
import type { StateDict } from '../nn/module.js';
import { save } from '../weights/save.js';
import { writeAtomic } from './files.js';
import { interrupted } from './interrupt.js';
import { Progress, stderrIsTerminal } from './progress.js';

export interface StepLoop<T> {
  steps: number;
  /** where the weights go (.safetensors) */
  output: string;
  /** progress on stderr (default true) */
  progress?: boolean;
  signal?: AbortSignal;
  /** one training step (s counts from 0); its result goes into the history */
  step: (s: number) => Promise<T>;
  /** the progress text of a step's result, e.g. "loss 0.1234, dice 0.567" */
  describe: (r: T) => string;
  /** the tensors written */
  stateDict: () => StateDict;
  /** the safetensors metadata written with them, after `stepsDone` steps */
  metadata: (stepsDone: number) => Record<string, string>;
  /** called after the weights are written */
  onWrite?: (path: string, steps: number) => void;
  /** frees the model and the optimiser's state */
  dispose: () => void;
}

/**
 * The end of a training command's step loop (MedSAM, TransUNet): nothing is written when no step
 * finished; otherwise the weights are written, the model freed, and a loop stopped early ends with
 * the interrupt message saying which step the file holds.
 */
async function finishTraining(o: { stepsDone: number; steps: number; output: string; write: () => Promise<{ replaced: boolean }>; dispose: () => void }): Promise<{ replaced: boolean }> {
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

/** Runs the loop; returns each finished step's result and whether the output replaced a file. */
export async function trainSteps<T>(o: StepLoop<T>): Promise<{ history: T[]; replaced: boolean }> {
  const history: T[] = [];
  const bar = o.progress === false ? null : new Progress({ unit: 'steps', total: o.steps, tty: stderrIsTerminal() });
  const t0 = performance.now();
  try {
    for (let s = 0; s < o.steps && !o.signal?.aborted; s++) {
      history.push(await o.step(s));
      bar?.update(s + 1, `${o.describe(history[s])}, ${((performance.now() - t0) / 1000 / (s + 1)).toFixed(2)} s/step`);
    }
  } catch (e) {
    bar?.end();
    o.dispose();
    throw e;
  }
  bar?.end();
  const write = async () => {
    const r = writeAtomic(o.output, (await save(o.stateDict(), { metadata: o.metadata(history.length) }))!);
    o.onWrite?.(o.output, history.length);
    return r;
  };
  const { replaced } = await finishTraining({ stepsDone: history.length, steps: o.steps, output: o.output, write, dispose: o.dispose });
  return { history, replaced };
}
