/**
 * A minimal GNU-format tar writer: exactly the bytes of nixpkgs' customisation layer command
 * `tar --sort name --numeric-owner --mtime @315532800 --hard-dereference -cf layer.tar .` (GNU tar 1.34, default
 * `gnu` format, run as (fake)root), for the few entry kinds a symlinkJoin tree has: directories, symlinks and small
 * regular files. Own code instead of tar-stream because the format is byte-exact (tar-stream writes POSIX ustar magic
 * and different field padding), so the layer's diffID equals the one nixpkgs would compute for the same tree.
 * Verified against the real GNU tar in test/integration/build-nix.test.ts and the fixture layer in the unit tests.
 */
export interface GnuTarEntry {
  /** relative path without `./`, e.g. `bin` or `etc/motd`; `''` is the top directory `./` */
  path: string;
  type: 'dir' | 'symlink' | 'file';
  mode: number;
  target?: string;
  content?: Buffer;
}

export const SOURCE_DATE_EPOCH = 315532800; // 1980-01-01, nixpkgs' SOURCE_DATE_EPOCH
const BLOCK = 512;
const RECORD = 10240; // GNU tar's default blocking factor 20

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: Buffer, opts: { mode: number; size: number; mtime: number; type: string; link?: Buffer }): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0, 0, 100);
  h.write(octal(opts.mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(opts.size, 12), 124, 'ascii');
  h.write(octal(opts.mtime, 12), 136, 'ascii');
  h.write(opts.type, 156, 'ascii');
  opts.link?.copy(h, 157, 0, 100);
  h.write('ustar  \0', 257, 'ascii'); // OLDGNU_MAGIC: magic and version fields together
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

function padded(data: Buffer): Buffer[] {
  const rest = data.length % BLOCK;
  return rest ? [data, Buffer.alloc(BLOCK - rest)] : [data];
}

/**
 * GNU's `././@LongLink` record for names/targets over 100 bytes: mode 0644, mtime 0, empty uname/gname under
 * --numeric-owner, then the NUL-terminated string as data.
 */
function longLink(kind: 'L' | 'K', value: Buffer): Buffer[] {
  const data = Buffer.concat([value, Buffer.alloc(1)]);
  return [header(Buffer.from('././@LongLink'), { mode: 0o644, size: data.length, mtime: 0, type: kind }), ...padded(data)];
}

/** The whole archive (small: symlinks and directories), entries in the order given. */
export function gnuTar(entries: GnuTarEntry[], mtime = SOURCE_DATE_EPOCH): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const name = Buffer.from(e.path === '' ? './' : `./${e.path}${e.type === 'dir' ? '/' : ''}`, 'utf8');
    const link = e.type === 'symlink' ? Buffer.from(e.target ?? '', 'utf8') : undefined;
    const content = e.type === 'file' ? (e.content ?? Buffer.alloc(0)) : Buffer.alloc(0);
    if (link && link.length > 100) out.push(...longLink('K', link));
    if (name.length > 100) out.push(...longLink('L', name));
    const type = e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0';
    out.push(header(name, { mode: e.mode, size: content.length, mtime, type, link }));
    if (content.length) out.push(...padded(content));
  }
  out.push(Buffer.alloc(2 * BLOCK));
  const size = out.reduce((s, b) => s + b.length, 0);
  if (size % RECORD) out.push(Buffer.alloc(RECORD - (size % RECORD)));
  return Buffer.concat(out);
}

/** GNU tar --sort=name: siblings by byte order of their names, depth first (parents before children). */
export function compareTarPaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = Buffer.compare(Buffer.from(pa[i]!, 'utf8'), Buffer.from(pb[i]!, 'utf8'));
    if (c) return c;
  }
  return pa.length - pb.length;
}
