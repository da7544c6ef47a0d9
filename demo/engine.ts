// The page's side of the GPU worker (demo/engine.worker.ts): typed requests that resolve with the
// worker's answer (or reject with a WorkerError, which names an out-of-memory refusal), and a
// listener for its progress events (training steps, stages).
import type { Event, OutOfMemory, Request } from './protocol.js';

/** A request the worker answered with an error; `oom` when the device refused an allocation. */
export class WorkerError extends Error {
  constructor(
    message: string,
    readonly oom: OutOfMemory | null,
  ) {
    super(message);
    this.name = 'WorkerError';
  }
}

type Body<K extends Request['kind']> = Omit<Extract<Request, { kind: K }>, 'id'>;

export class Engine {
  private worker: Worker;
  private next = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  onEvent: (e: Event) => void = () => {};

  constructor() {
    this.worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' });
    this.worker.onmessage = (m: MessageEvent<Event>) => {
      const e = m.data;
      if (e.kind === 'done' || e.kind === 'error') {
        const p = this.pending.get(e.id);
        this.pending.delete(e.id);
        if (e.kind === 'done') p?.resolve(e.result);
        else p?.reject(new WorkerError(e.message, e.oom ?? null));
        return;
      }
      this.onEvent(e);
    };
    this.worker.onerror = (e) => {
      const err = new Error(`the GPU worker failed: ${e.message || 'script error'}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.onEvent({ kind: 'error', id: 0, message: err.message });
    };
  }

  request<T, K extends Request['kind'] = Request['kind']>(kind: K, body: Omit<Body<K>, 'kind'> = {} as Omit<Body<K>, 'kind'>, transfer: Transferable[] = []): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...body, kind, id }, transfer);
    });
  }
}
