// What a benchmark case is: a kernel at one shape, with its work (flops and the bytes it must move
// at least) and a setup that allocates inputs and returns an instance: one run (encoded, the runner
// syncs and times it) and a check of the last run's output against a float64 CPU reference on
// sampled positions. A case of a registry family (matmul, conv, attention, norm) is timed once per
// variant the registry has for it (the runner forces each); other cases have one row, `label`.
export interface BenchInstance {
  /** encodes one run */
  run(): void;
  /** the last run's max relative error against the float64 reference (check.ts's relErr) */
  check(): Promise<number>;
  /** frees what setup allocated */
  teardown?(): void;
}

export interface BenchCase {
  /** kernel and shape, e.g. "matmul 1024x1024x1024" */
  name: string;
  /** the kernel-variant registry family whose variants are timed (one row each) */
  registry?: string;
  /** the row's label where there is no registry family (e.g. "forward", "Adam") */
  label?: string;
  /** variants not run, with the reason (e.g. memory) */
  exclude?: Record<string, string>;
  flops: number;
  bytes: number;
  setup(): Promise<BenchInstance> | BenchInstance;
}

/** A family module: its cases at the models' shapes, and small ones for --quick. */
export interface BenchFamily {
  cases: BenchCase[];
  quick: BenchCase[];
}
