// The tuned table in use: measured variant choices per kernel family and shape class for one
// adapter (what src/gpu/tune.ts's tuner writes), consulted by the registry (variants.ts) before a
// family's default rule. Kept apart from the tuner so the registry needs no timing code.

/** One measured choice: the winning variant and every candidate's time (ms per run). */
export interface TunedEntry {
  variant: string;
  ms: Record<string, number>;
  /** what was timed (the workload's label) */
  workload?: string;
}

/** A table for one adapter, as the tuner writes it (JSON). */
export interface TunedTable {
  version: 1;
  /** the adapter key (tune.ts's adapterKey: 'llvmpipe', 'swiftshader' or a slug of the adapter's name) */
  adapter: string;
  /** the adapter's full name when measured */
  adapterName?: string;
  measured?: string;
  /** family -> shape class -> choice */
  families: Record<string, Record<string, TunedEntry>>;
}

let active: TunedTable | null = null;

/** The table the registry consults (null: default rules only). */
export function activeTunedTable(): TunedTable | null {
  return active;
}

/** Replaces the table the registry consults (null: back to the default rules). */
export function setActiveTunedTable(t: TunedTable | null): void {
  active = t;
}

/** The tuned variant name for a family's shape class, if the table has one. */
export function tunedChoice(family: string, shapeClass: string): string | undefined {
  return active?.families[family]?.[shapeClass]?.variant;
}
