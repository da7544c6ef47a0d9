// Hostile pickles (test/fixtures/make-hostile-pickles.py writes them with Python's own pickle and
// torch.save, and checks that Python's unpickling really runs each code payload): os/posix/nt.system,
// builtins eval/exec/getattr/__import__, subprocess.Popen, torch.load, INST and OBJ, payloads nested
// in an allowed OrderedDict, in BUILD state and inside a real torch.save state dict, a custom class's
// __setstate__, memo abuse, a dict holding itself, persistent ids naming storages outside the archive
// (../../../etc/passwd, /etc/passwd, ../data.pkl) or a forbidden storage class, and an np.savez object
// array (a pickle inside the .npy, which np.load runs with allow_pickle). None executes: each is
// refused with the offending global (or storage) named, and no allow-listed function is called
// after the refusal point; 100,000 nested lists end in a result or a clear error, not a stack overflow.
import { describe, expect, it } from 'vitest';
import { bytesSource, openCheckpoint, readNpz, readPth, stateDict, unpickle } from '../../src/weights/index.js';
import { torchGlobals } from '../../src/weights/pth.js';
import type { Globals } from '../../src/weights/pickle.js';
import { HOSTILE_PICKLES } from '../fixtures/hostile_pickles.js';

const fromB64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** torchGlobals with every call recorded (by name). */
function spied(): { globals: Globals; calls: string[] } {
  const calls: string[] = [];
  const globals: Globals = {};
  for (const [k, impl] of Object.entries(torchGlobals)) globals[k] = { call: (a, kw) => (calls.push(k), impl.call(a, kw)) };
  return { globals, calls };
}

describe('hostile pickles', () => {
  it('the fixtures are hostile: Python ran 17 of their payloads when it unpickled them', () => {
    expect(HOSTILE_PICKLES.filter((c) => c.executesInPython).length).toBe(17);
  });

  for (const c of HOSTILE_PICKLES.filter((c) => c.refusal)) {
    it(`${c.kind === 'pth' ? 'torch.save file' : c.kind === 'npz' ? 'np.savez file' : 'pickle'}: ${c.name} is refused by name`, async () => {
      const bytes = fromB64(c.b64);
      if (c.kind === 'pickle') {
        const { globals, calls } = spied();
        let err: Error | null = null;
        try {
          unpickle(bytes, { globals, name: 'hostile.pkl', persistentLoad: () => null });
        } catch (e) {
          err = e as Error;
        }
        expect(err, 'must be refused').not.toBeNull();
        expect(err!.message).toContain(c.refusal);
        // nothing but the harmless container constructors ran before the refusal
        expect(calls.filter((k) => k !== 'collections.OrderedDict' && k !== 'builtins.dict')).toEqual([]);
      } else if (c.kind === 'npz') {
        await expect(readNpz(bytesSource(bytes, 'hostile.npz'))).rejects.toThrow(c.refusal);
        await expect(openCheckpoint(bytesSource(bytes, 'hostile.npz'))).rejects.toThrow(c.refusal);
      } else {
        await expect(readPth(bytesSource(bytes, 'hostile.pth'))).rejects.toThrow(c.refusal);
        await expect(openCheckpoint(bytesSource(bytes, 'hostile.pth'))).rejects.toThrow(c.refusal);
      }
    });
  }

  it('a dict that holds itself (through the memo) unpickles, and looking for a state dict in it ends with a clear error', () => {
    const c = HOSTILE_PICKLES.find((x) => x.name === 'a dict that holds itself')!;
    const root = unpickle(fromB64(c.b64), { globals: torchGlobals, name: 'cycle.pkl' }) as Map<string, unknown>;
    expect(root.get('self')).toBe(root);
    expect(() => stateDict(root, 'cycle.pkl')).toThrow(/no state dict/);
  });

  it('100,000 nested lists end in a result or a clear error, not a stack overflow', () => {
    const N = 100_000;
    const bytes = new Uint8Array(2 + N + (N - 1) + 1);
    bytes.set([0x80, 0x02]);
    bytes.fill(0x5d, 2, 2 + N); // EMPTY_LIST x N
    bytes.fill(0x61, 2 + N, 2 + N + N - 1); // APPEND x N - 1: each list into the one below it
    bytes[bytes.length - 1] = 0x2e; // STOP
    const root = unpickle(bytes, { globals: torchGlobals, name: 'deep.pkl' });
    let depth = 0;
    for (let x = root as unknown[]; Array.isArray(x) && x.length; x = x[0] as unknown[]) depth++;
    expect(depth).toBe(N - 1);
    let err: Error | null = null;
    try {
      stateDict(root, 'deep.pkl');
    } catch (e) {
      err = e as Error;
    }
    expect(err).not.toBeInstanceOf(RangeError);
    expect(err?.message).toMatch(/no state dict/);
  });
});
