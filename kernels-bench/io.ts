// What the suite needs from where it runs: writing its result files (whole, after every row) and
// finding and saving tuned tables. Node: tune-cache.ts's nodeIO (files, ~/.cache/medseg);
// Chromium: browser/page.ts's (files sent to the Node side, tables in localStorage).
import type { TunedTable } from 'medseg/gpu';

export interface SuiteIO {
  /** writes a result file whole */
  write(path: string, text: string): void;
  /** the tuned table to use for the adapter key, and where it came from */
  loadTable(key: string): Promise<{ table: TunedTable; from: string } | null>;
  /** where --tune saves the adapter's table */
  cachePath(key: string): string;
  saveTable(key: string, table: TunedTable): Promise<void>;
}
