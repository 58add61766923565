import { hash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeSystemError, fileError } from '../errors.js';

/**
 * A map from entry path to a small unsigned integer whose memory does not grow with the number of paths: up to
 * `memoryEntries` it is a plain Map; past that every entry moves to an open-addressing hash table in a temp file
 * (linear probing, load factor at most 1/2, doubled when full) read and written with pread/pwrite, so the
 * entries live in the page cache, not in the process.
 *
 * On disk a path is stored as the first 16 bytes of SHA-256(salt, path) with a random per-run salt: a hostile
 * layer cannot choose two names that share a slot, and an accidental collision among 10^9 paths has odds below
 * 2^-68. The file is unlinked right after it is created, so nothing is left behind, not even after kill -9.
 */
const KEY = 16;
const SLOT = 24; // key, uint32 value, uint8 used (+3 bytes padding)
const PROBE = 16; // slots read per pread
const IO_SLOTS = 1 << 14; // slots per sequential read while growing or iterating
/** Recently used paths' values kept in memory once on disk: parents are looked up for every entry below them. */
const CACHE_ENTRIES = 4096;
const ABSENT = -1;

export interface PathIndexOptions {
  /** entries kept in memory before the index moves to disk (default 65536) */
  memoryEntries?: number;
  /** directory for the table file (default: the system temp dir) */
  tmpDir?: string;
}

export const DEFAULT_MEMORY_ENTRIES = 1 << 16;

export class PathIndex {
  private mem: Map<string, number> | undefined = new Map();
  private disk: DiskTable | undefined;
  private readonly limit: number;
  /** path -> value (ABSENT: not in the index), least recently used first; only while on disk */
  private readonly cache = new Map<string, number>();
  private lastPath = '';
  private lastKey: Buffer | undefined;

  constructor(
    private readonly opts: PathIndexOptions = {},
    private readonly salt: string = randomBytes(16).toString('hex'),
  ) {
    this.limit = opts.memoryEntries ?? DEFAULT_MEMORY_ENTRIES;
  }

  get size(): number {
    return this.mem ? this.mem.size : this.disk!.count;
  }

  get(path: string): number | undefined {
    if (this.mem) return this.mem.get(path);
    const hit = this.cache.get(path);
    if (hit !== undefined) {
      this.cache.delete(path);
      this.cache.set(path, hit);
      return hit === ABSENT ? undefined : hit;
    }
    const v = this.disk!.get(this.key(path));
    this.remember(path, v ?? ABSENT);
    return v;
  }

  set(path: string, value: number): void {
    if (this.mem) {
      if (this.mem.size < this.limit || this.mem.has(path)) {
        this.mem.set(path, value);
        return;
      }
      this.spill();
    }
    this.disk!.set(this.key(path), value);
    this.remember(path, value);
  }

  private remember(path: string, value: number): void {
    this.cache.delete(path);
    this.cache.set(path, value);
    if (this.cache.size > CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
  }

  /** value |= bits */
  or(path: string, bits: number): void {
    this.set(path, ((this.get(path) ?? 0) | bits) >>> 0);
  }

  /** Every entry of `other` or'ed into this one (the two must share a salt: see `sibling`). */
  orAll(other: PathIndex): void {
    if (other.mem) {
      for (const [p, v] of other.mem) this.or(p, v);
      return;
    }
    if (this.mem) this.spill();
    this.cache.clear(); // entries are merged by key, not by path
    const disk = this.disk!;
    other.disk!.forEach((k, v) => disk.set(k, ((disk.get(k) ?? 0) | v) >>> 0));
  }

  /** An empty index whose disk keys match this one's (so `orAll` can merge them without the paths). */
  sibling(): PathIndex {
    return new PathIndex(this.opts, this.salt);
  }

  close(): void {
    this.disk?.close();
    this.disk = undefined;
    this.mem = new Map();
    this.cache.clear();
  }

  private key(path: string): Buffer {
    if (this.lastKey && path === this.lastPath) return this.lastKey; // a get, then a set of the same path
    this.lastPath = path;
    // crypto.hash: one call, no Hash object (whose native state would pile up until a GC)
    return (this.lastKey = hash('sha256', this.salt + path, 'buffer').subarray(0, KEY));
  }

  private spill(): void {
    const disk = new DiskTable(this.opts.tmpDir, Math.max(1024, this.mem!.size * 4));
    for (const [p, v] of this.mem!) disk.set(this.key(p), v);
    this.mem = undefined;
    this.disk = disk;
  }
}

class DiskTable {
  count = 0;
  private fd: number;
  private readonly probe = Buffer.alloc(PROBE * SLOT);
  private readonly slot = Buffer.alloc(SLOT);
  /** The last lookup, reused by a set of the same key right after it (no write in between). */
  private last: { key: Buffer; slot: number; found: boolean; value: number } | undefined;

  constructor(
    private readonly dir: string | undefined,
    private slots: number,
  ) {
    this.slots = 1 << Math.ceil(Math.log2(slots));
    this.fd = this.create();
  }

  get(key: Buffer): number | undefined {
    const at = this.find(key, this.fd, this.slots);
    this.last = { key, ...at };
    return at.found ? at.value : undefined;
  }

  set(key: Buffer, value: number): void {
    const at = this.last?.key === key ? this.last : this.find(key, this.fd, this.slots);
    this.last = undefined;
    if (!at.found) {
      if ((this.count + 1) * 2 > this.slots) {
        this.grow();
        this.set(key, value);
        return;
      }
      this.count++;
    }
    this.writeSlot(this.fd, at.slot, key, value);
  }

  forEach(fn: (key: Buffer, value: number) => void): void {
    const buf = Buffer.alloc(IO_SLOTS * SLOT);
    for (let s = 0; s < this.slots; s += IO_SLOTS) {
      const n = Math.min(IO_SLOTS, this.slots - s);
      this.read(this.fd, buf, n * SLOT, s * SLOT);
      for (let i = 0; i < n; i++) {
        const o = i * SLOT;
        if (buf[o + KEY + 4] === 1) fn(Buffer.from(buf.subarray(o, o + KEY)), buf.readUInt32LE(o + KEY));
      }
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  /** The slot holding `key`, or the empty slot where it belongs. */
  private find(key: Buffer, fd: number, slots: number): { slot: number; found: boolean; value: number } {
    let s = key.readUInt32LE(0) & (slots - 1);
    for (;;) {
      const n = Math.min(PROBE, slots - s);
      this.read(fd, this.probe, n * SLOT, s * SLOT);
      for (let i = 0; i < n; i++) {
        const o = i * SLOT;
        if (this.probe[o + KEY + 4] !== 1) return { slot: s + i, found: false, value: 0 };
        if (this.probe.compare(key, 0, KEY, o, o + KEY) === 0) return { slot: s + i, found: true, value: this.probe.readUInt32LE(o + KEY) };
      }
      s = (s + n) & (slots - 1);
    }
  }

  private grow(): void {
    this.last = undefined;
    const oldFd = this.fd;
    const oldSlots = this.slots;
    this.slots *= 2;
    this.fd = this.create();
    const buf = Buffer.alloc(IO_SLOTS * SLOT);
    for (let s = 0; s < oldSlots; s += IO_SLOTS) {
      const n = Math.min(IO_SLOTS, oldSlots - s);
      this.read(oldFd, buf, n * SLOT, s * SLOT);
      for (let i = 0; i < n; i++) {
        const o = i * SLOT;
        if (buf[o + KEY + 4] !== 1) continue;
        const key = buf.subarray(o, o + KEY);
        this.writeSlot(this.fd, this.find(key, this.fd, this.slots).slot, key, buf.readUInt32LE(o + KEY));
      }
    }
    closeSync(oldFd);
  }

  private writeSlot(fd: number, slot: number, key: Buffer, value: number): void {
    key.copy(this.slot, 0, 0, KEY);
    this.slot.writeUInt32LE(value >>> 0, KEY);
    this.slot[KEY + 4] = 1;
    try {
      writeSync(fd, this.slot, 0, SLOT, slot * SLOT);
    } catch (err) {
      throw fileError(`cannot write the export path index in ${this.dir ?? tmpdir()}: ${describeSystemError(err)} (or set TMPDIR)`, err);
    }
  }

  /** Read `len` bytes at `pos`; past the end of the (sparse) file reads as zeros, i.e. empty slots. */
  private read(fd: number, buf: Buffer, len: number, pos: number): void {
    let got = 0;
    try {
      while (got < len) {
        const n = readSync(fd, buf, got, len - got, pos + got);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      throw fileError(`cannot read the export path index in ${this.dir ?? tmpdir()}: ${describeSystemError(err)}`, err);
    }
    buf.fill(0, got, len);
  }

  /** A new table file, unlinked at once: only the descriptor keeps it. */
  private create(): number {
    const base = this.dir ?? tmpdir();
    let dir: string | undefined;
    try {
      dir = mkdtempSync(join(base, 'nixreg-export-index-'));
      const file = join(dir, 'paths');
      const fd = openSync(file, 'w+', 0o600);
      unlinkSync(file);
      return fd;
    } catch (err) {
      throw fileError(`cannot create the export path index in ${base}: ${describeSystemError(err)} (or set TMPDIR)`, err);
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }
}
