// Opens the GPU for a command, after its arguments are checked and its inputs read, and says in one
// line which adapter it got (folding in the runtime's "no GPU adapter found" note, which would
// otherwise be a second line).
import { init, type Runtime } from '../gpu/runtime.js';

export async function openGpu(log: (line: string) => void): Promise<Runtime> {
  const notes: string[] = [];
  const warn = console.warn;
  console.warn = (...a: unknown[]) => notes.push(a.map(String).join(' '));
  let rt: Runtime;
  try {
    rt = await init();
  } finally {
    console.warn = warn;
  }
  const fellBack = notes.some((n) => /no GPU adapter found/.test(n));
  const kind = rt.adapterKind === 'cpu' ? ` (a CPU adapter${fellBack ? ': no GPU adapter found' : ''}; MEDSEG_ADAPTER=gpu|swiftshader|llvmpipe chooses)` : '';
  log(`adapter: ${rt.adapterName}${kind}`);
  for (const n of notes) if (!/no GPU adapter found/.test(n)) log(n);
  return rt;
}
