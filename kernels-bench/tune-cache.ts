// Where the benchmark keeps tuned tables in Node: the cache file (MEDSEG_TUNE_FILE, else
// ~/.cache/medseg/tuned-<adapter>.json), which --tune writes after every tuned case, and the tables
// shipped in the repository (kernels-bench/tuned/<adapter>.json), used when there is no cache;
// and nodeIO, the suite's file access in Node.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTunedTable, type TunedTable } from 'medseg/gpu';
import type { SuiteIO } from './io.js';

export function cachePath(adapter: string): string {
  return process.env.MEDSEG_TUNE_FILE || join(homedir(), '.cache', 'medseg', `tuned-${adapter}.json`);
}

/** kernels-bench/tuned/<adapter>.json, from the sources (kernels-bench/) or the build (dist-bench/). */
export function shippedPath(adapter: string): string {
  return fileURLToPath(new URL(`../kernels-bench/tuned/${adapter}.json`, import.meta.url));
}

/** The cache's table for the adapter, else the shipped one, else null; with where it came from. */
export function loadTable(adapter: string): { table: TunedTable; from: string } | null {
  for (const path of [cachePath(adapter), shippedPath(adapter)]) {
    if (!existsSync(path)) continue;
    const table = parseTunedTable(JSON.parse(readFileSync(path, 'utf8')), path);
    if (table.adapter === adapter) return { table, from: path };
  }
  return null;
}

export function saveTable(path: string, table: TunedTable): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.partial`, JSON.stringify(table, null, 2) + '\n');
  renameSync(`${path}.partial`, path);
}

/** The suite's IO in Node: files written through a temporary name, tables in cachePath. */
export const nodeIO: SuiteIO = {
  write(path, text) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(`${path}.partial`, text);
    renameSync(`${path}.partial`, path);
  },
  loadTable: async (key) => loadTable(key),
  cachePath,
  saveTable: async (key, table) => saveTable(cachePath(key), table),
};
