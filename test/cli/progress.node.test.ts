// Progress lines (src/cli/progress.ts): not on a terminal, a plain line per interval while work goes
// on (also while nothing finishes: the elapsed time moves) and a final one with the full count, never
// a line per update; on a terminal, one line redrawn in place with '\r' that ends with a newline.
import { describe, expect, it } from 'vitest';
import { Progress } from '../../src/cli/progress.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Progress', () => {
  it('without a terminal: a line per interval and one at the end, not one per update', async () => {
    const lines: string[] = [];
    const p = new Progress({ unit: 'windows', total: 400, tty: false, intervalSeconds: 0.1, write: (t) => lines.push(t) });
    for (let i = 1; i <= 400; i++) {
      p.update(i);
      if (i % 100 === 0) await sleep(120);
    }
    await sleep(250); // nothing finishes, the timer still reports
    p.end();
    p.end();
    expect(lines.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(lines.length).toBeLessThan(20);
    expect(lines[lines.length - 1]).toMatch(/^windows 400\/400 \(100%\), \d+ s\n$/);
    const before = lines.length;
    await sleep(250);
    expect(lines.length, 'no line after end()').toBe(before);
  });
  it('on a terminal: one line redrawn with \\r, and print() keeps messages above it', () => {
    const out: string[] = [];
    const p = new Progress({ unit: 'steps', total: 2, tty: true, write: (t) => out.push(t) });
    p.update(1, 'loss 0.5000');
    p.print('best mean training Dice 0.500');
    p.end();
    const text = out.join('');
    expect(text.startsWith('\rsteps 1/2 (50%), loss 0.5000, 0 s\x1b[K')).toBe(true);
    expect(text).toContain('\rbest mean training Dice 0.500\x1b[K\n');
    expect(text.endsWith('\x1b[K\n')).toBe(true);
    expect(text.split('\n').filter(Boolean).length).toBe(2);
  });
});
