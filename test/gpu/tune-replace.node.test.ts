// The --tune replace rule (src/gpu/tune.ts's replaceMeasured, what the benchmark's --tune and
// tune() apply to an older table): a class measured in the run replaces the older entry entirely
// (variants only the older entry timed are gone, variants it lacked can win), a class the run did
// not measure is kept as it was, and two cases of one class in the run sum their times (a variant
// must have run both to compete). Table logic only: no GPU work.
import { describe, expect, it } from 'vitest';
import '../../src/ops/matmul.js';
import { replaceMeasured, type TunedEntry } from '../../src/gpu/tune.js';

const entry = (ms: Record<string, number>, workload: string): TunedEntry => {
  const ranked = Object.entries(ms).sort((a, b) => a[1] - b[1]);
  return { variant: ranked[0][0], ms: Object.fromEntries(ranked), workload };
};

// an older table: its 256^3 entry has a variant dropped since (tiled-k8) and none registered since (tiled-k32)
const older: Record<string, TunedEntry> = {
  '256x256x256': entry({ naive: 9, blocked: 3, tiled: 4, 'tiled-k8': 1 }, 'old 256'),
  '1024x1024x1024': entry({ blocked: 24, tiled: 40 }, 'old 1024'),
};

describe('replaceMeasured (the --tune replace rule)', () => {
  it('a re-measured class replaces the older entry entirely; new variants can win', () => {
    const run = [{ '256x256x256': entry({ naive: 9.5, blocked: 3.5, tiled: 2.5, 'tiled-k32': 2 }, 'matmul 256') }];
    const out = replaceMeasured(older, run, 'matmul');
    expect(out['256x256x256']).toEqual({ variant: 'tiled-k32', ms: { 'tiled-k32': 2, tiled: 2.5, blocked: 3.5, naive: 9.5 }, workload: 'matmul 256' });
    // the older entry's tiled-k8 (not timed in this run) is gone, and none of its times were added
    expect(out['256x256x256'].ms).not.toHaveProperty('tiled-k8');
  });

  it('a class the run did not measure is kept as it was', () => {
    const out = replaceMeasured(older, [{ '256x256x256': entry({ blocked: 3 }, 'matmul 256') }], 'matmul');
    expect(out['1024x1024x1024']).toEqual(older['1024x1024x1024']);
    expect(Object.keys(out).sort()).toEqual(['1024x1024x1024', '256x256x256']);
    // with no older table, only the run's classes
    expect(Object.keys(replaceMeasured(undefined, [{ '64x64x64': entry({ naive: 1 }, 'a') }], 'matmul'))).toEqual(['64x64x64']);
  });

  it('two cases of one class in the run sum their times; a variant missing from one drops out', () => {
    const run: Record<string, TunedEntry>[] = [
      { '256x256x256': entry({ blocked: 3, tiled: 1, 'tiled-m16': 0.5 }, 'case A') },
      { '256x256x256': entry({ blocked: 3, tiled: 4 }, 'case B'), '64x64x64': entry({ naive: 1, blocked: 2 }, 'case B') },
    ];
    const out = replaceMeasured(older, run, 'matmul');
    // tiled 1 + 4 = 5 beats blocked 3 + 3 = 6; tiled-m16 (0.5) ran only case A, so it does not compete
    expect(out['256x256x256']).toEqual({ variant: 'tiled', ms: { tiled: 5, blocked: 6 }, workload: 'case A; case B' });
    expect(out['64x64x64'].variant).toBe('naive');
    // the order of the cases does not change the sums
    expect(replaceMeasured(older, [...run].reverse(), 'matmul')['256x256x256'].ms).toEqual({ tiled: 5, blocked: 6 });
    // the older table's times for the class take no part
    expect(out['256x256x256'].ms.naive).toBeUndefined();
  });
});
