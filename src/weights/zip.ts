// Zip archive reader over a random-access ByteSource: the central directory (zip64 included)
// is read once, members are read on demand, stored (method 0) or deflated (method 8, inflated
// with fflate), and checked against their CRC-32. Used by the .pth (torch.save) and .npz
// readers. Only the bytes of the member being read are held in memory.
import { Inflate, inflateSync } from 'fflate';
import { checkRange, crc32, utf8, type ByteSource } from './source.js';

export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** Inflate cannot expand more than about 1032:1; a larger claim is a corrupt header. */
const MAX_DEFLATE_RATIO = 1032;

const u64 = (dv: DataView, o: number) => {
  const v = dv.getBigUint64(o, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`zip: a 64-bit field (${v}) is too large`);
  return Number(v);
};

export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private dataOffsets = new Map<string, number>();

  private constructor(readonly source: ByteSource) {}

  static isZip(head: Uint8Array): boolean {
    return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5) && (head[3] === 4 || head[3] === 6);
  }

  static async open(source: ByteSource): Promise<ZipArchive> {
    const z = new ZipArchive(source);
    await z.readDirectory();
    return z;
  }

  private fail(msg: string): never {
    throw new Error(`${this.source.name}: not a readable zip archive: ${msg}`);
  }

  private async readDirectory(): Promise<void> {
    const src = this.source;
    if (src.size < 22) this.fail(`only ${src.size} bytes`);
    const tailLen = Math.min(src.size, 22 + 0xffff);
    const tail = await src.read(src.size - tailLen, tailLen);
    const tdv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tdv.getUint32(i, true) === EOCD && i + 22 + tdv.getUint16(i + 20, true) <= tail.length) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) this.fail('no end-of-central-directory record (truncated download?)');
    let count = tdv.getUint16(eocd + 10, true);
    let cdSize = tdv.getUint32(eocd + 12, true);
    let cdOffset = tdv.getUint32(eocd + 16, true);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locAt = src.size - tailLen + eocd - 20;
      if (locAt < 0) this.fail('zip64 locator missing');
      const loc = await src.read(locAt, 20);
      const ldv = new DataView(loc.buffer, loc.byteOffset, 20);
      if (ldv.getUint32(0, true) !== EOCD64_LOCATOR) this.fail('zip64 locator missing');
      const recAt = u64(ldv, 8);
      checkRange(src, recAt, 56, 'zip64 end record');
      const rec = await src.read(recAt, 56);
      const rdv = new DataView(rec.buffer, rec.byteOffset, 56);
      if (rdv.getUint32(0, true) !== EOCD64) this.fail('bad zip64 end record');
      count = u64(rdv, 32);
      cdSize = u64(rdv, 40);
      cdOffset = u64(rdv, 48);
    }
    if (cdOffset + cdSize > src.size) this.fail(`central directory (${cdSize} bytes at ${cdOffset}) passes the end of the file (${src.size} bytes): truncated`);
    if (count * 46 > cdSize) this.fail(`${count} entries cannot fit a ${cdSize}-byte central directory`);
    const cd = await src.read(cdOffset, cdSize);
    const dv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || dv.getUint32(p, true) !== CENTRAL) this.fail(`central directory entry ${i} is damaged`);
      const flags = dv.getUint16(p + 8, true);
      const method = dv.getUint16(p + 10, true);
      const crc = dv.getUint32(p + 16, true);
      let compressedSize = dv.getUint32(p + 20, true);
      let size = dv.getUint32(p + 24, true);
      const nameLen = dv.getUint16(p + 28, true);
      const extraLen = dv.getUint16(p + 30, true);
      const commentLen = dv.getUint16(p + 32, true);
      let localHeaderOffset = dv.getUint32(p + 42, true);
      if (p + 46 + nameLen + extraLen + commentLen > cd.length) this.fail(`central directory entry ${i} passes the directory's end`);
      const name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
      // zip64 extended information: the 0xffffffff fields, in this order.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = dv.getUint16(e, true);
        const len = dv.getUint16(e + 2, true);
        if (e + 4 + len > eEnd) this.fail(`extra field of '${name}' is damaged`);
        if (id === 1) {
          let q = e + 4;
          const take = () => {
            if (q + 8 > e + 4 + len) this.fail(`zip64 field of '${name}' is short`);
            const v = u64(dv, q);
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
        }
        e += 4 + len;
      }
      if (localHeaderOffset + 30 + compressedSize > src.size) this.fail(`member '${name}' (${compressedSize} bytes at ${localHeaderOffset}) passes the end of the file: truncated`);
      this.entries.set(name, { name, method, flags, crc, compressedSize, size, localHeaderOffset });
      p += 46 + nameLen + extraLen + commentLen;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.source.name}: archive has no member '${name}'`);
    return e;
  }

  /** Offset of the member's first data byte (after its local header). */
  async dataOffset(e: ZipEntry): Promise<number> {
    const known = this.dataOffsets.get(e.name);
    if (known !== undefined) return known;
    const h = await this.source.read(e.localHeaderOffset, 30);
    const dv = new DataView(h.buffer, h.byteOffset, 30);
    if (dv.getUint32(0, true) !== LOCAL) this.fail(`local header of '${e.name}' is missing`);
    const off = e.localHeaderOffset + 30 + dv.getUint16(26, true) + dv.getUint16(28, true);
    checkRange(this.source, off, e.compressedSize, `member '${e.name}'`);
    this.dataOffsets.set(e.name, off);
    return off;
  }

  /** Reads a whole member, inflating if needed, and checks its CRC-32. */
  async read(name: string, { checkCrc = true } = {}): Promise<Uint8Array> {
    const e = this.entry(name);
    if (e.flags & 1) this.fail(`member '${name}' is encrypted`);
    if (e.method !== 0 && e.method !== 8) this.fail(`member '${name}' uses compression method ${e.method} (only stored and deflate are supported)`);
    const raw = await this.source.read(await this.dataOffset(e), e.compressedSize);
    let data: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size) this.fail(`stored member '${name}' has sizes ${e.compressedSize} != ${e.size}`);
      data = raw;
    } else {
      if (e.size > e.compressedSize * MAX_DEFLATE_RATIO + 1024) this.fail(`member '${name}' claims ${e.size} bytes from ${e.compressedSize} compressed: corrupt header`);
      try {
        data = inflateSync(raw, { out: new Uint8Array(e.size) });
      } catch (err) {
        this.fail(`member '${name}' does not inflate (${(err as Error).message}): corrupt or truncated`);
      }
      if (data.length !== e.size) this.fail(`member '${name}' inflates to ${data.length} bytes, the directory says ${e.size}`);
    }
    if (checkCrc) {
      const c = crc32(data);
      if (c !== e.crc) this.fail(`member '${name}' fails its CRC check (${hex(c)} != ${hex(e.crc)}): the file is corrupt`);
    }
    return data;
  }

  /**
   * The first `length` bytes of a member (fewer if it is shorter), inflating only as much as
   * needed: for reading a header without the whole member.
   */
  async readHead(name: string, length: number): Promise<Uint8Array> {
    const e = this.entry(name);
    const n = Math.min(length, e.size);
    if (e.method === 0) return this.readRange(name, 0, n);
    if (e.method !== 8) return (await this.read(name)).subarray(0, n);
    const start = await this.dataOffset(e);
    const out = new Uint8Array(n);
    let got = 0;
    const inf = new Inflate((chunk) => {
      const take = Math.min(chunk.length, n - got);
      out.set(chunk.subarray(0, take), got);
      got += take;
    });
    try {
      // Small steps first: a header usually sits in the first few hundred compressed bytes.
      for (let off = 0, step = 1024; got < n && off < e.compressedSize; off += step, step = Math.min(step * 4, 1 << 20)) {
        const len = Math.min(step, e.compressedSize - off);
        inf.push(await this.source.read(start + off, len), off + len >= e.compressedSize);
      }
    } catch (err) {
      this.fail(`member '${name}' does not inflate (${(err as Error).message}): corrupt or truncated`);
    }
    if (got < n) this.fail(`member '${name}' inflates to fewer than ${n} bytes`);
    return out;
  }

  /** Reads `length` bytes at `offset` inside a stored member (no CRC check: a partial read). */
  async readRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    const e = this.entry(name);
    if (e.method !== 0) return (await this.read(name)).subarray(offset, offset + length);
    if (offset < 0 || length < 0 || offset + length > e.size) this.fail(`read of ${length} bytes at ${offset} passes the end of member '${name}' (${e.size} bytes)`);
    return this.source.read((await this.dataOffset(e)) + offset, length);
  }
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
