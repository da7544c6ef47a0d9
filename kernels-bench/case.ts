// What a benchmark case is: a named variant of a kernel at one shape, with its work (flops and
// the bytes it must move at least), and a setup that allocates inputs and returns one run.
export interface BenchCase {
  /** kernel and shape, e.g. "matmul 1024x1024x1024" */
  name: string;
  /** e.g. "naive", "tiled", "fused" */
  variant: string;
  flops: number;
  bytes: number;
  /** Allocates inputs; returns a function that encodes one run (the runner syncs and times it). */
  setup(): Promise<() => void> | (() => void);
  /** Frees what setup allocated (optional). */
  teardown?(): void;
}
