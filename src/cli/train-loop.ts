// The step loop of the fine-tuning train commands (MedSAM, TransUNet): runs `step` until `steps` have
// finished or the signal aborts (Ctrl-C: the current step finishes first), with the progress on stderr
// (the step's own text and the seconds per step), then ends through finishTraining: the weights and
// their metadata written atomically (nothing when no step finished), the model freed, and a loop that
// stopped early ends with the interrupt message naming the step the file holds. A step that throws
// frees the model and rethrows.
import type { StateDict } from '../nn/module.js';
import { save } from '../weights/save.js';
import { writeAtomic } from './files.js';
import { finishTraining } from './interrupt.js';
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
