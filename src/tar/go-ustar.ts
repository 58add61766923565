/**
 * Tar headers exactly as Go's `archive/tar` writes them for a `tar.FileInfoHeader` with mtime 0, no uid/gid/names
 * (what containers/image's docker-archive writer produces through Go's archive/tar, https://pkg.go.dev/archive/tar). Own code, not tar-stream: tar-stream's
 * headers differ in bytes that matter for a flat hash (it writes `ustar\0` + `00` but fills uname/gname/devmajor
 * differently and cannot reproduce Go's PAX fallback naming), and the archive must be byte-identical to skopeo's.
 *
 * Layout of one USTAR block (Go `templateV7Plus` + `setFormat(USTAR)`):
 *   name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8] typeflag[1] linkname[100]
 *   magic "ustar\0" version "00" uname[32] gname[32] devmajor[8] devminor[8] prefix[155] pad[12]
 * Numbers are zero-padded octal with a trailing NUL (Go `formatOctal`); the checksum is 6 octal digits, NUL, space.
 */

export const BLOCK = 512;
/** End of archive: two zero blocks and nothing more (Go does not pad to a 10240-byte record). */
export const TAR_TRAILER: Buffer = Buffer.alloc(2 * BLOCK);

/** Largest size the 11-digit octal field holds (8 GiB - 1); above it Go switches to a PAX header. */
export const MAX_OCTAL_SIZE = 0o77777777777;

export type GoEntryType = 'file' | 'symlink';

export interface GoEntry {
  name: string;
  type: GoEntryType;
  size?: number; // files only
  linkname?: string; // symlinks only
}

function putString(b: Buffer, off: number, len: number, s: string): void {
  // Go formatString: copy, NUL-pad; a value exactly `len` bytes long gets no terminator. Names here are ASCII.
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > len) throw new Error(`tar field too long (${bytes.length} > ${len}): ${s}`);
  bytes.copy(b, off);
}

function putOctal(b: Buffer, off: number, len: number, x: number): void {
  // Go formatOctal: octal digits, left-padded with '0' to len-1, then NUL. Values that do not fit are written as 0.
  let s = x >= 0 && x < 8 ** (len - 1) ? x.toString(8) : '0';
  s = s.padStart(len - 1, '0');
  b.write(s, off, 'latin1');
  b[off + len - 1] = 0;
}

function setFormatAndChecksum(b: Buffer): void {
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  b.fill(0x20, 148, 156); // checksum computed with the field as 8 spaces
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  putOctal(b, 148, 7, sum);
  b[155] = 0x20;
}

/** The main header block (Go `templateV7Plus` with `formatOctal`). A size too large for octal is written as 0. */
function ustarBlock(e: GoEntry): Buffer {
  const b = Buffer.alloc(BLOCK);
  const isLink = e.type === 'symlink';
  putString(b, 0, 100, e.name);
  putOctal(b, 100, 8, isLink ? 0 : 0o444);
  putOctal(b, 108, 8, 0);
  putOctal(b, 116, 8, 0);
  putOctal(b, 124, 12, isLink ? 0 : (e.size ?? 0));
  putOctal(b, 136, 12, 0);
  b[156] = isLink ? 0x32 : 0x30;
  if (isLink) putString(b, 157, 100, e.linkname ?? '');
  putOctal(b, 329, 8, 0); // devmajor
  putOctal(b, 337, 8, 0); // devminor
  setFormatAndChecksum(b);
  return b;
}

/** Go `formatPAXRecord`: "<len> key=value\n" where len counts the whole record including its own digits. */
export function paxRecord(key: string, value: string): string {
  let size = key.length + value.length + 3;
  size += String(size).length;
  let rec = `${size} ${key}=${value}\n`;
  if (rec.length !== size) rec = `${rec.length} ${key}=${value}\n`;
  return rec;
}

/**
 * Header bytes for one entry. Sizes of 8 GiB or more get Go's PAX fallback (derived from Go's
 * writePAXHeader/writeRawFile, not verified against a real > 8 GiB skopeo archive): an `x` entry named
 * `PaxHeaders.0/<name>` whose raw header carries only name/mode/uid/gid/size/mtime (devmajor/devminor stay NUL),
 * its padded "size=N" record, then the real header with a zero size field.
 */
export function goTarHeader(e: GoEntry): Buffer {
  const size = e.type === 'file' ? (e.size ?? 0) : 0;
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`invalid tar entry size ${size}`);
  if (size <= MAX_OCTAL_SIZE) return ustarBlock(e);
  const record = Buffer.from(paxRecord('size', String(size)), 'utf8');
  const slash = e.name.lastIndexOf('/');
  const paxName = (slash >= 0 ? e.name.slice(0, slash + 1) : '') + 'PaxHeaders.0/' + e.name.slice(slash + 1);
  const x = Buffer.alloc(BLOCK);
  putString(x, 0, 100, paxName.slice(0, 100).replace(/\/+$/, ''));
  putOctal(x, 100, 8, 0);
  putOctal(x, 108, 8, 0);
  putOctal(x, 116, 8, 0);
  putOctal(x, 124, 12, record.length);
  putOctal(x, 136, 12, 0);
  x[156] = 0x78; // 'x'
  setFormatAndChecksum(x);
  return Buffer.concat([x, record, padding(record.length), ustarBlock(e)]);
}

/** NUL bytes that pad `size` bytes of data to a 512-byte boundary. */
export function padding(size: number): Buffer {
  const r = size % BLOCK;
  return r === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - r);
}

/** A complete small in-memory file entry: header + data + padding. */
export function goTarFile(name: string, data: Buffer): Buffer {
  return Buffer.concat([goTarHeader({ name, type: 'file', size: data.length }), data, padding(data.length)]);
}

export function goTarSymlink(name: string, target: string): Buffer {
  return goTarHeader({ name, type: 'symlink', linkname: target });
}
