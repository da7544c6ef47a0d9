// Node-only byte sources and sinks: a file read by position (only the requested ranges are in
// memory), and a file sink that writes to a temporary name next to the target and renames it
// into place on close, or deletes it on abort, so a failed conversion leaves nothing behind.
// Exported by the Node entry (src/node.ts, 'medseg/node') and used by the CLI; the main entry never
// imports this file, so browser bundles never see node:fs.
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { checkRange, type ByteSink, type ByteSource } from './source.js';

export async function fileSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  const fh = await open(path, 'r');
  const { size } = await fh.stat();
  const src = {
    size,
    name: basename(path),
    async read(offset: number, length: number) {
      checkRange(src, offset, length);
      const out = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(out, got, length - got, offset + got);
        if (bytesRead === 0) throw new Error(`${path}: file shrank while reading`);
        got += bytesRead;
      }
      return out;
    },
    close: () => fh.close(),
  };
  return src;
}

export class FileSink implements ByteSink {
  readonly tempPath: string;
  private fh: FileHandle | null = null;
  private done = false;

  constructor(readonly path: string) {
    this.tempPath = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.partial`);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done) throw new Error(`${this.path}: write after close`);
    this.fh ??= await open(this.tempPath, 'wx');
    let off = 0;
    while (off < chunk.byteLength) off += (await this.fh.write(chunk, off, chunk.byteLength - off)).bytesWritten;
  }

  async close(): Promise<void> {
    this.fh ??= await open(this.tempPath, 'wx');
    await this.fh.sync();
    await this.fh.close();
    this.fh = null;
    this.done = true;
    await rename(this.tempPath, this.path);
  }

  async abort(): Promise<void> {
    this.done = true;
    if (this.fh) await this.fh.close().catch(() => {});
    this.fh = null;
    await unlink(this.tempPath).catch(() => {});
  }
}
