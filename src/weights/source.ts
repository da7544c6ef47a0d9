// Byte sources and sinks the weight readers and writers work over, the same in Node and the
// browser: a random-access source (`size`, `read(offset, length)`) built from a Uint8Array or a
// Blob/File (a Node file handle lives in node-io.ts), and a sink (`write`, `close`, `abort`)
// that the safetensors writer streams into (memory here; a temp-file-then-rename file in
// node-io.ts; an OPFS writable in cache.ts). Readers only ever hold the bytes they asked for.

export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** A name for error messages (file name, URL, "buffer"). */
  readonly name: string;
  /** Reads exactly `length` bytes at `offset`; throws if the range passes the end. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

export interface ByteSink {
  write(chunk: Uint8Array): Promise<void>;
  /** Finishes the output (a file sink renames its temp file into place here). */
  close(): Promise<void>;
  /** Drops everything written so far; nothing is left behind. */
  abort(): Promise<void>;
}

export function checkRange(src: { size: number; name: string }, offset: number, length: number, what = 'read'): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > src.size) {
    throw new Error(`${src.name}: ${what} of ${length} bytes at offset ${offset} passes the end of the data (${src.size} bytes): the file is truncated or corrupt`);
  }
}

export function bytesSource(bytes: Uint8Array | ArrayBuffer, name = 'buffer'): ByteSource {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const src: ByteSource = {
    size: b.byteLength,
    name,
    async read(offset, length) {
      checkRange(src, offset, length);
      return b.subarray(offset, offset + length);
    },
  };
  return src;
}

export function blobSource(blob: Blob, name = (blob as File).name ?? 'blob'): ByteSource {
  const src: ByteSource = {
    size: blob.size,
    name,
    async read(offset, length) {
      checkRange(src, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
  return src;
}

/** Collects everything written into one Uint8Array (small outputs, tests). */
export class MemorySink implements ByteSink {
  private chunks: Uint8Array[] = [];
  private length = 0;
  result: Uint8Array | null = null;
  async write(chunk: Uint8Array) {
    this.chunks.push(chunk.slice());
    this.length += chunk.byteLength;
  }
  async close() {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.byteLength;
    }
    this.chunks = [];
    this.result = out;
  }
  async abort() {
    this.chunks = [];
    this.result = null;
  }
}

const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (zip's polynomial); pass the previous value to continue over several chunks. */
export function crc32(data: Uint8Array, prev = 0): number {
  let c = ~prev >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

export const utf8 = new TextDecoder('utf-8', { fatal: false });
export const latin1 = (b: Uint8Array) => {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
};
