// Size-bucketed pool of storage buffers. Sizes round up to one of four steps per power of two
// (at most 25% slack); released buffers wait for reuse, and the oldest are destroyed once the
// idle bytes pass a cap (after the pending batch is submitted, so no queued command loses its buffer).
// Each new buffer is created inside an 'out-of-memory' error scope: WebGPU reports a failed
// allocation only asynchronously, so the pool records it (the bytes asked for and the op) and
// releases its idle buffers at once; the runtime turns the record into an OutOfMemoryError at the
// next sync point (see Runtime.checkAllocations). The peak counts only buffers that exist: a refused
// buffer's bytes come back out of it once the refusal is known, and it is never reused.

// GPUBufferUsage's values, spelled out: in Node the global exists only once Dawn is loaded.
export const Usage = { MAP_READ: 0x1, MAP_WRITE: 0x2, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
export const STORAGE_USAGE = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;

export function bucketSize(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 4) * 4);
  const p = 2 ** Math.floor(Math.log2(b));
  for (const step of [1, 1.25, 1.5, 1.75, 2]) if (p * step >= b) return Math.ceil((p * step) / 4) * 4;
  return b;
}

/** One allocation the device refused: what it was for, the bytes asked for (bucketed) and the device's message. */
export interface FailedAllocation {
  label: string;
  bytes: number;
  message: string;
  /** the pool's live and idle bytes when it was asked */
  liveBytes: number;
  idleBytes: number;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private checks: Promise<void>[] = [];
  private failed: FailedAllocation[] = [];
  /** Buffers the device refused (no longer in liveBytes): destroyed on release, never pooled. */
  private refused = new WeakSet<GPUBuffer>();
  /** Live buffers whose out-of-memory scope has not answered yet (release takes them out). */
  private unchecked = new Set<GPUBuffer>();
  /** Set when the device is lost: buffers are no longer reused, only counted back. */
  lost: string | null = null;
  private idleBytes = 0;
  private doomed: GPUBuffer[] = [];
  liveBuffers = 0;
  liveBytes = 0;
  peakLiveBytes = 0;

  constructor(
    private device: GPUDevice,
    private maxIdleBytes = 256 * 2 ** 20,
  ) {}

  acquire(bytes: number, label?: string | (() => string)): GPUBuffer {
    const size = bucketSize(bytes);
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) this.idleBytes -= size;
    else {
      // the label (a function: built only here, on a miss) names the buffer and its failures
      const name = typeof label === 'function' ? label() : label;
      const max = this.device.limits.maxBufferSize;
      if (size > max) {
        throw new Error(`medseg: a ${fmtBytes(bytes)} buffer${name ? ` for ${name}` : ''} exceeds this adapter's maxBufferSize (${fmtBytes(max)})`);
      }
      buf = this.create(size, name ?? 'an unnamed tensor');
    }
    this.liveBuffers++;
    this.liveBytes += size;
    this.peakLiveBytes = Math.max(this.peakLiveBytes, this.liveBytes);
    return buf;
  }

  private create(size: number, label: string): GPUBuffer {
    const at = { liveBytes: this.liveBytes, idleBytes: this.idleBytes };
    const peakBefore = this.peakLiveBytes;
    this.device.pushErrorScope('out-of-memory');
    const buf = this.device.createBuffer({ size, usage: STORAGE_USAGE, label });
    this.unchecked.add(buf);
    this.checks.push(
      this.device.popErrorScope().then(
        (err) => {
          const live = this.unchecked.delete(buf); // false: released before the answer
          if (!err) return;
          this.failed.push({ label, bytes: size, message: err.message, ...at });
          // the peak since this buffer was asked for counted it: without it, the live bytes of that
          // stretch were `size` lower (and the peak before it stands, unless reset since)
          this.peakLiveBytes = Math.min(this.peakLiveBytes, Math.max(peakBefore, this.peakLiveBytes - size));
          if (live) {
            this.refused.add(buf); // its release only destroys it
            this.liveBuffers--;
            this.liveBytes -= size;
          }
          this.clear(); // give the idle buffers back to the device before anything else asks
        },
        () => void this.unchecked.delete(buf), // a lost device rejects the scope; the runtime reports the loss itself
      ),
    );
    // fold the scope promises now and then so the list stays short between sync points
    if (this.checks.length > 256) this.checks = [Promise.all(this.checks).then(() => undefined)];
    return buf;
  }

  /** Waits for the out-of-memory scopes of every allocation so far; returns (and forgets) the failed ones. */
  async settle(): Promise<FailedAllocation[]> {
    while (this.checks.length) {
      const c = this.checks;
      this.checks = [];
      await Promise.all(c);
    }
    const f = this.failed;
    this.failed = [];
    return f;
  }

  release(buf: GPUBuffer): void {
    const size = buf.size;
    if (this.refused.has(buf)) {
      this.doomed.push(buf); // already out of the counts
      return;
    }
    this.unchecked.delete(buf); // its scope may still report a refusal: the counts have it back already
    this.liveBuffers--;
    this.liveBytes -= size;
    if (this.lost) return; // the device and its buffers are gone
    if (size > this.maxIdleBytes / 4) {
      this.doomed.push(buf);
      return;
    }
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf);
    this.idleBytes += size;
    if (this.idleBytes > this.maxIdleBytes) this.trim();
  }

  private trim(): void {
    for (const [size, list] of [...this.free.entries()].sort((a, b) => b[0] - a[0])) {
      while (list.length && this.idleBytes > this.maxIdleBytes / 2) {
        this.doomed.push(list.pop()!);
        this.idleBytes -= size;
      }
    }
  }

  /** Called after a submit: buffers dropped from the pool are destroyed now that no unsubmitted command uses them. */
  afterSubmit(): void {
    for (const b of this.doomed) b.destroy();
    this.doomed = [];
  }

  /** Destroys every idle buffer (e.g. before measuring memory). */
  clear(): void {
    for (const list of this.free.values()) for (const b of list) this.doomed.push(b);
    this.free.clear();
    this.idleBytes = 0;
  }

  stats() {
    return { liveBuffers: this.liveBuffers, liveBytes: this.liveBytes, peakLiveBytes: this.peakLiveBytes, idleBytes: this.idleBytes };
  }
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
