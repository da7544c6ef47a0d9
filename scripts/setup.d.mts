// Types of scripts/setup.mjs for test/setup.node.test.ts.
import type { Facts } from './system.mjs';
export function ensure(
  purpose: 'test' | 'start',
  options?: { probeFn?: () => Facts; exec?: (argv: string[]) => void; log?: (line: string) => void },
): { ok: boolean; line: string };
