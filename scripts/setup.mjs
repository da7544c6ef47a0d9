// Installs what medseg needs from the system (scripts/system.mjs says what and why) or says in one
// line what to install: `node scripts/setup.mjs test|start` (npm test and npm start run it first,
// and .ci/run through npm test). Fast and silent but for one line when everything is there: it looks
// at files before it calls apt-get. Exit 0 when everything needed is there afterwards, else 1.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, plan, probe } from './system.mjs';

/**
 * Makes sure the needs of `purpose` are met: runs the plan's install commands (through `exec`),
 * probes again, and returns { ok, line }: `line` is what to print (what was found, or what is
 * missing and how to install it).
 */
export function ensure(purpose, { probeFn = probe, exec = run, log = (l) => process.stderr.write(`${l}\n`) } = {}) {
  let facts = probeFn();
  let p = plan(facts, purpose);
  if (p.missing.length && p.commands.length) {
    log(`medseg setup: installing ${p.missing.join(', ')}: ${p.commands.map((c) => c.join(' ')).join(' && ')}`);
    try {
      for (const c of p.commands) exec(c);
    } catch (e) {
      return { ok: false, line: `medseg setup: '${e.command ?? 'install'}' failed (${e.message.split('\n')[0]}); still missing: ${p.missing.join(', ')}` };
    }
    facts = probeFn();
    p = plan(facts, purpose);
  }
  if (p.missing.length) {
    return { ok: false, line: `medseg: cannot run ${purpose === 'test' ? 'the tests' : 'npm start'}: missing ${p.missing.join(', ')}; ${p.manual ?? 'the install did not provide it'}` };
  }
  return { ok: true, line: `medseg setup (${purpose}): ${describe(facts, purpose)}` };
}

function run(argv) {
  try {
    execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (e) {
    e.command = argv.join(' ');
    throw e;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const purpose = process.argv[2] ?? 'test';
  if (purpose !== 'test' && purpose !== 'start') {
    console.error('usage: node scripts/setup.mjs [test|start]');
    process.exit(2);
  }
  const r = ensure(purpose);
  console.error(r.line);
  process.exit(r.ok ? 0 : 1);
}
