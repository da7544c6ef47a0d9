// The CLI runs its command in a child process whose stderr passes through a filter. Dawn, the Vulkan
// loader and Mesa print start-up noise from native code straight to file descriptor 2 (Wayland's
// "XDG_RUNTIME_DIR is invalid", Dawn rejecting a Vulkan device while it looks for adapters, Dawn's
// "artificially reduced" limit warnings on OpenGL), which Node cannot silence in-process; the parent
// drops those known lines and forwards everything else as it comes (a terminal's updating progress
// line included). The child has its own session, so a Ctrl-C reaches it once, forwarded by the
// parent, and the parent exits with the child's status. MEDSEG_CLI_CHILD=1 runs unfiltered in one
// process.
import { spawn } from 'node:child_process';

/** Lines that are start-up noise, never a message for the user. */
export const NOISE: readonly RegExp[] = [
  /^error: XDG_RUNTIME_DIR is invalid or not set in the environment/,
  /^Warning: \w+ artificially reduced from \d+ to \d+/,
  /^Warning: Vulkan .* required\.?$/,
  /^(WARNING|ERROR|INFO|DEBUG|PERF): \[Loader Message\]/,
  /^libEGL warning: /,
  /^MESA-LOADER: /,
];

/** Lines that continue a dropped Dawn message (" - While initializing adapter", "    at Fn (file:line)", the blank after). */
const CONTINUATION = /^( - |\s+at |\s*$)/;

/** Splits a byte stream into lines and drops the noise; a partial line that redraws a progress line ('\r...') passes at once. */
export class NoiseFilter {
  private pending = '';
  private dropping = false;

  push(chunk: string): string {
    this.pending += chunk;
    let out = '';
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      out += this.line(this.pending.slice(0, nl), '\n');
      this.pending = this.pending.slice(nl + 1);
    }
    if (this.pending.startsWith('\r')) {
      out += this.pending;
      this.pending = '';
      this.dropping = false;
    }
    return out;
  }

  /** What is left when the stream ends. */
  end(): string {
    const rest = this.pending ? this.line(this.pending, '') : '';
    this.pending = '';
    return rest;
  }

  private line(text: string, eol: string): string {
    const bare = text.replace(/\r$/, '');
    if (NOISE.some((re) => re.test(bare))) {
      this.dropping = true;
      return '';
    }
    if (this.dropping && CONTINUATION.test(bare)) return '';
    this.dropping = false;
    return text + eol;
  }
}

/** Runs this same command line again in a child with filtered stderr; resolves with its exit status. */
export function runFilteredChild(): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, MEDSEG_CLI_CHILD: '1' };
  if (process.stderr.isTTY) env.MEDSEG_STDERR_COLUMNS = String(process.stderr.columns || 80);
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env,
    stdio: ['ignore', 'inherit', 'pipe'],
    // its own session: a terminal's Ctrl-C reaches the parent alone, which passes it on once
    detached: process.platform !== 'win32',
  });
  const filter = new NoiseFilter();
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    const out = filter.push(s);
    if (out) process.stderr.write(out);
  });
  const forward = (signal: NodeJS.Signals) => () => {
    child.kill(signal);
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((done) => {
    child.on('error', (e) => {
      process.stderr.write(`medseg: could not start ${process.execPath}: ${e.message}\n`);
      done(1);
    });
    child.on('close', (code, signal) => {
      const rest = filter.end();
      if (rest) process.stderr.write(rest);
      for (const [s, h] of handlers) process.off(s, h);
      if (code === null && signal !== 'SIGINT' && signal !== 'SIGTERM') process.stderr.write(`medseg: the command was stopped by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}\n`);
      done(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1));
    });
  });
}
