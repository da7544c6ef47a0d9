// The suite in Chromium (--browser): suite.ts with the browser's IO. Result files go to the Node
// side through the function browser/run.ts exposes (benchWrite); tuned tables live in
// localStorage (storeTunedTable), else the shipped table is fetched from kernels-bench/tuned/.
import { loadStoredTunedTable, parseTunedTable, storeTunedTable } from 'medseg/gpu';
import type { SuiteIO } from '../io.js';
import { runSuite, type SuiteOptions } from '../suite.js';

declare function benchWrite(path: string, text: string): Promise<void>;

const browserIO: SuiteIO = {
  write: (path, text) => void benchWrite(path, text),
  async loadTable(key) {
    const stored = loadStoredTunedTable();
    if (stored) return { table: stored, from: `localStorage medseg.tuned.${key}` };
    const res = await fetch(`/kernels-bench/tuned/${key}.json`);
    if (!res.ok) return null;
    const table = parseTunedTable(await res.json(), `kernels-bench/tuned/${key}.json`);
    return table.adapter === key ? { table, from: `kernels-bench/tuned/${key}.json (shipped)` } : null;
  },
  cachePath: (key) => `localStorage medseg.tuned.${key}`,
  saveTable: async (_key, table) => storeTunedTable(table),
};

async function runSuiteInPage(o: Omit<SuiteOptions, 'io' | 'log'>) {
  const r = await runSuite({ ...o, io: browserIO, log: (l) => console.log(l) });
  return { adapter: r.adapter, rows: r.rows.length };
}

(globalThis as { runSuiteInPage?: typeof runSuiteInPage }).runSuiteInPage = runSuiteInPage;
