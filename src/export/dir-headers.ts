import { closeSync, mkdtempSync, openSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { describeSystemError, fileError } from '../errors.js';
import { DEFAULT_MEMORY_ENTRIES, type PathIndexOptions } from './path-index.js';
import type { OutHeader } from './tar-out.js';

/**
 * The directory headers `export` writes after every other entry, deepest first (descending path order); a
 * directory given twice keeps its last header. Memory does not grow with the number of directories: every
 * `memoryEntries` headers are sorted and written to a run file (unlinked at once, so nothing outlives the
 * process); 16 runs are merged into one; the runs are merged at the end (an external merge sort).
 */
interface Rec {
  seq: number;
  h: OutHeader;
}

/** Descending name; for one name the latest header first. JS string order, as the in-memory sort. */
const before = (a: Rec, b: Rec): number => (a.h.name < b.h.name ? 1 : a.h.name > b.h.name ? -1 : b.seq - a.seq);

const encode = (r: Rec): string => JSON.stringify([r.seq, { ...r.h, xattrs: r.h.xattrs?.map(([k, v]) => [k, v.toString('base64')]) }]) + '\n';

function decode(line: string): Rec {
  const [seq, h] = JSON.parse(line) as [number, Omit<OutHeader, 'xattrs'> & { xattrs?: Array<[string, string]> }];
  return { seq, h: { ...h, xattrs: h.xattrs?.map(([k, v]): [string, Buffer] => [k, Buffer.from(v, 'base64')]) } };
}

export class DirHeaders {
  private mem: Rec[] = [];
  private readonly runs: number[] = [];
  private seq = 0;
  private readonly limit: number;

  constructor(private readonly opts: PathIndexOptions = {}) {
    this.limit = Math.max(1, opts.memoryEntries ?? DEFAULT_MEMORY_ENTRIES);
  }

  /** A directory's header; a later one for the same name replaces it. */
  add(h: OutHeader): void {
    this.mem.push({ seq: this.seq++, h });
    if (this.mem.length >= this.limit) this.spill();
  }

  /** Every directory once (its last header), deepest first; the run files are closed afterwards. */
  *deepestFirst(): Generator<OutHeader> {
    try {
      this.mem.sort(before);
      for (const r of merged([this.mem.values(), ...this.runs.map((fd) => readRun(fd, this.dir()))])) yield r.h;
    } finally {
      this.close();
    }
  }

  close(): void {
    for (const fd of this.runs.splice(0)) closeSync(fd);
    this.mem = [];
  }

  private dir(): string {
    return this.opts.tmpDir ?? tmpdir();
  }

  private spill(): void {
    this.mem.sort(before);
    this.runs.push(this.writeRun(this.mem.values()));
    this.mem = [];
    // at most MAX_RUNS open run files: past that they are merged into one
    if (this.runs.length >= MAX_RUNS) {
      const old = this.runs.splice(0);
      try {
        this.runs.push(this.writeRun(merged(old.map((fd) => readRun(fd, this.dir())))));
      } finally {
        for (const fd of old) closeSync(fd);
      }
    }
  }

  /** A new unlinked run file holding `records` (already in order); returns its descriptor. */
  private writeRun(records: Iterable<Rec>): number {
    const base = this.dir();
    let dir: string | undefined;
    let fd: number | undefined;
    try {
      dir = mkdtempSync(join(base, 'nixreg-export-dirs-'));
      const file = join(dir, 'run');
      fd = openSync(file, 'w+', 0o600);
      unlinkSync(file);
      let chunk = '';
      for (const r of records) {
        chunk += encode(r);
        if (chunk.length >= 1 << 16) writeSync(fd, chunk), (chunk = '');
      }
      if (chunk) writeSync(fd, chunk);
      return fd;
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      throw fileError(`cannot write the export directory list in ${base}: ${describeSystemError(err)} (or set TMPDIR)`, err);
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }
}

const MAX_RUNS = 16;

/** The records of sorted sources in one order, each name once (its latest header). */
function* merged(sources: Array<Iterator<Rec>>): Generator<Rec> {
  const heads = sources.map((s) => s.next());
  let last: string | undefined;
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) if (!heads[i]!.done && (best < 0 || before(heads[i]!.value, heads[best]!.value) < 0)) best = i;
    if (best < 0) return;
    const r = heads[best]!.value as Rec;
    heads[best] = sources[best]!.next();
    if (r.h.name === last) continue;
    last = r.h.name;
    yield r;
  }
}

/** The records of a run file, in order, read in 64 KiB blocks. */
function* readRun(fd: number, dir: string): Generator<Rec> {
  const buf = Buffer.alloc(1 << 16);
  const utf8 = new StringDecoder('utf8'); // a character split across two blocks stays whole
  let pos = 0;
  let rest = '';
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, pos);
    } catch (err) {
      throw fileError(`cannot read the export directory list in ${dir}: ${describeSystemError(err)}`, err);
    }
    if (n === 0) {
      rest += utf8.end();
      break;
    }
    pos += n;
    const text = rest + utf8.write(buf.subarray(0, n));
    const lines = text.split('\n');
    rest = lines.pop()!;
    for (const l of lines) yield decode(l);
  }
  if (rest) yield decode(rest);
}
