// Progress of long work (segment's windows, train's steps) on stderr. On a terminal: one line,
// redrawn in place. Otherwise (a log file, a pipe, CI): a plain line every few seconds
// (MEDSEG_PROGRESS_SECONDS, default 5) and one at the end, so a long run is never silent and a log
// never fills with thousands of lines. A timer draws too, so the elapsed time moves while one slow
// step or window runs.

export interface ProgressOptions {
  /** what is counted, e.g. 'windows' or 'steps' */
  unit: string;
  total: number;
  /** one updating line (a terminal) or a line per interval */
  tty: boolean;
  write?: (text: string) => void;
  /** seconds between lines when not a terminal */
  intervalSeconds?: number;
}

/** Whether the CLI's stderr is a terminal: directly, or the terminal of the parent that filters it (main.ts). */
export const stderrIsTerminal = (): boolean => process.stderr.isTTY === true || !!process.env.MEDSEG_STDERR_COLUMNS;

/** The interval of non-terminal progress lines, from MEDSEG_PROGRESS_SECONDS (default 5). */
export function progressInterval(): number {
  const v = Number(process.env.MEDSEG_PROGRESS_SECONDS);
  return v > 0 ? v : 5;
}

export class Progress {
  private done = 0;
  private detail = '';
  private readonly t0 = performance.now();
  private lastDraw = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly write: (text: string) => void;
  private finished = false;

  constructor(private readonly o: ProgressOptions) {
    this.write = o.write ?? ((t) => process.stderr.write(t));
    const interval = o.tty ? 1000 : (o.intervalSeconds ?? progressInterval()) * 1000;
    this.timer = setInterval(() => this.draw(), interval);
    this.timer.unref?.();
  }

  /** `done` of `total` finished; `detail` follows the count ("loss 0.41, dice 0.62"). */
  update(done: number, detail = ''): void {
    this.done = done;
    this.detail = detail;
    // a terminal line follows every update (at most 10 a second); plain lines wait for the timer
    if (this.o.tty && performance.now() - this.lastDraw > 100) this.draw();
  }

  /** A message between progress lines (on a terminal: above the updating line). */
  print(text: string): void {
    if (this.o.tty && !this.finished) {
      this.write(`\r${text}\x1b[K\n`);
      this.draw();
    } else this.write(`${text}\n`);
  }

  /** The final line (also on a terminal, which then moves on to a new line). */
  end(): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.timer);
    this.draw(true);
  }

  line(): string {
    const s = (performance.now() - this.t0) / 1000;
    const pct = this.o.total ? ` (${Math.floor((100 * this.done) / this.o.total)}%)` : '';
    return `${this.o.unit} ${this.done}/${this.o.total}${pct}${this.detail ? `, ${this.detail}` : ''}, ${s.toFixed(0)} s`;
  }

  private draw(last = false): void {
    if (this.finished && !last) return;
    this.lastDraw = performance.now();
    if (this.o.tty) this.write(`\r${this.line()}\x1b[K${last ? '\n' : ''}`);
    else this.write(`${this.line()}\n`);
  }
}
