// File mutations for the readers' property tests (fast-check): truncation, bit flips, bytes set
// to edge values, 16/32/64-bit fields overwritten with huge or negative numbers (both byte
// orders), ranges deleted or inserted, long runs of a short pattern inserted, a wrong magic.
// Positions are drawn half the time from a file's "hot" offsets (its header fields and record
// signatures), where a mutation changes structure rather than data. `checkOutcome` is the
// property: a result, or an Error (not a RangeError or TypeError from a DataView or an array, no
// SyntaxError from JSON) whose message names the file, within a time bound.
import fc from 'fast-check';
import { expect } from 'vitest';

export type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'int'; at: number; width: 2 | 4 | 8; value: bigint; littleEndian: boolean }
  | { kind: 'splice'; at: number; remove: number; insert: Uint8Array }
  | { kind: 'magic'; value: Uint8Array }
  | { kind: 'repeat'; at: number; pattern: Uint8Array; times: number };

/** Runs per property: MEDSEG_FUZZ_RUNS (e.g. 100000 for a long soak), else `ci`. */
export const fuzzRuns = (ci: number) => Number(globalThis.process?.env?.MEDSEG_FUZZ_RUNS) || ci;
/** A fixed seed keeps CI reproducible; MEDSEG_FUZZ_SEED=random (or a number) explores further. */
export function fuzzSeed(): number | undefined {
  const s = globalThis.process?.env?.MEDSEG_FUZZ_SEED;
  if (s === 'random') return undefined;
  return s ? Number(s) : 17;
}

const EDGE = [0n, 1n, 2n, 7n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn, 0x10000n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 1n << 40n, (1n << 53n) + 1n, 0x7fffffffffffffffn, 0xffffffffffffffffn];

export function mutationArb(hot: number[]): fc.Arbitrary<Mutation> {
  const pos = hot.length ? fc.oneof(fc.constantFrom(...hot), fc.nat()) : fc.nat();
  return fc.oneof(
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('flip' as const), at: pos, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set' as const), at: pos, value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff) }),
    fc.record({ kind: fc.constant('int' as const), at: pos, width: fc.constantFrom(2 as const, 4 as const, 8 as const), value: fc.constantFrom(...EDGE), littleEndian: fc.boolean() }),
    fc.record({ kind: fc.constant('splice' as const), at: pos, remove: fc.integer({ min: 0, max: 64 }), insert: fc.uint8Array({ maxLength: 64 }) }),
    fc.record({ kind: fc.constant('magic' as const), value: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant('repeat' as const), at: pos, pattern: fc.uint8Array({ minLength: 1, maxLength: 4 }), times: fc.integer({ min: 100, max: 20_000 }) }),
  );
}

export function applyMutations(src: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = src.slice();
  for (const m of ms) {
    if (b.length === 0) break;
    const at = 'at' in m ? m.at % b.length : 0;
    switch (m.kind) {
      case 'truncate':
        b = b.slice(0, at);
        break;
      case 'flip':
        b[at] ^= 1 << m.bit;
        break;
      case 'set':
        b[at] = m.value;
        break;
      case 'int': {
        const bytes = new Uint8Array(8);
        new DataView(bytes.buffer).setBigUint64(0, m.value & 0xffffffffffffffffn, m.littleEndian);
        const part = m.littleEndian ? bytes.subarray(0, m.width) : bytes.subarray(8 - m.width);
        b.set(part.subarray(0, Math.max(0, b.length - at)), at);
        break;
      }
      case 'splice': {
        const out = new Uint8Array(b.length - Math.min(m.remove, b.length - at) + m.insert.length);
        out.set(b.subarray(0, at));
        out.set(m.insert, at);
        out.set(b.subarray(at + m.remove), at + m.insert.length);
        b = out;
        break;
      }
      case 'magic':
        b.set(m.value.subarray(0, b.length));
        break;
      case 'repeat': {
        const run = m.pattern.length * m.times;
        const out = new Uint8Array(b.length + run);
        out.set(b.subarray(0, at));
        for (let i = 0; i < run; i++) out[at + i] = m.pattern[i % m.pattern.length];
        out.set(b.subarray(at), at + run);
        b = out;
        break;
      }
    }
  }
  return b;
}

/** Offsets of zip record fields (local, central, end records) in a file: the hot spots of a zip. */
export function zipHotOffsets(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= b.length; i++) {
    if (b[i] !== 0x50 || b[i + 1] !== 0x4b) continue;
    const sig = b[i + 2] | (b[i + 3] << 8);
    const fields = sig === 0x0403 ? [0, 8, 14, 18, 22, 26, 28, 30] : sig === 0x0201 ? [0, 10, 16, 20, 24, 28, 30, 32, 42, 46] : sig === 0x0605 ? [0, 8, 10, 12, 16, 20] : sig === 0x0606 || sig === 0x0706 ? [0, 8, 24, 32, 40, 48] : [];
    for (const f of fields) out.push(i + f);
  }
  return out;
}

export interface Outcome {
  cases: number;
  results: number;
  errors: number;
  slowestMs: number;
  /** the largest growth of ArrayBuffer memory over one case (0 where it cannot be measured) */
  peakBytes: number;
}

/** Bytes held in ArrayBuffers (Node); 0 in a browser. */
const arrayBufferBytes = () => (globalThis.process?.memoryUsage ? globalThis.process.memoryUsage().arrayBuffers : 0);

/**
 * The property over `seeds`: `parse` (which should also read every tensor it finds) resolves, or
 * throws an Error whose message contains `name`, within `budgetMs` and without holding more
 * ArrayBuffer memory than the input justifies. Counts what happened.
 */
export async function checkOutcome(what: string, seeds: { bytes: Uint8Array; hot: number[] }[], parse: (bytes: Uint8Array) => unknown, { runs, name, budgetMs = 1000, maxMutations = 4, prepare }: { runs: number; name: string; budgetMs?: number; maxMutations?: number; /** turns a mutated seed into the parser's input outside the timed and memory-counted part (e.g. gzip it) */ prepare?: (bytes: Uint8Array) => Uint8Array }): Promise<Outcome> {
  const o: Outcome = { cases: 0, results: 0, errors: 0, slowestMs: 0, peakBytes: 0 };
  const hotAll = [...new Set(seeds.flatMap((s) => s.hot))];
  const arb = fc.tuple(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(mutationArb(hotAll), { minLength: 1, maxLength: maxMutations }));
  await fc.assert(
    fc.asyncProperty(arb, async ([i, ms]) => {
      const mutated = applyMutations(seeds[i].bytes, ms);
      const bytes = prepare ? prepare(mutated) : mutated;
      const mem0 = arrayBufferBytes();
      const t0 = performance.now();
      let err: unknown = null;
      try {
        await parse(bytes);
      } catch (e) {
        err = e;
      }
      const ms_ = performance.now() - t0;
      o.cases++;
      o.slowestMs = Math.max(o.slowestMs, ms_);
      if (ms_ > budgetMs) throw new Error(`${what}: a case took ${ms_.toFixed(0)} ms (budget ${budgetMs} ms)`);
      // Memory held in ArrayBuffers after the case (garbage not yet collected included): at most
      // what deflate's 1032:1 ratio lets the input stand for, plus slack.
      const grown = arrayBufferBytes() - mem0;
      const allowed = 64 * 2 ** 20 + 1032 * bytes.length;
      o.peakBytes = Math.max(o.peakBytes, grown);
      if (grown > allowed) throw new Error(`${what}: a ${bytes.length}-byte input left ${grown} bytes of ArrayBuffers allocated (allowed ${allowed})`);
      if (err === null) return void o.results++;
      o.errors++;
      if (!(err instanceof Error) || [RangeError, TypeError, SyntaxError, ReferenceError, EvalError, URIError].some((T) => err instanceof T)) throw new Error(`${what}: threw ${(err as Error)?.constructor?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}\n${(err as Error)?.stack ?? ''}`);
      if (!err.message.includes(name)) throw new Error(`${what}: the message does not name the file: ${err.message}`);
    }),
    { numRuns: runs, seed: fuzzSeed(), endOnFailure: true, includeErrorInReport: true },
  );
  expect(o.cases).toBe(runs);
  return o;
}
