import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { detectCompression } from '../compression/decompress.js';
import { Readable } from 'node:stream';
import { NotATarError, TarArchive, type TarMember } from '../nix/stream/tar-reader.js';
import { NixregError, describeSystemError, usageError } from '../errors.js';
import { readSmall } from './verify.js';

/**
 * An image archive (docker-archive or OCI archive; plain, gzip or whatever tar-reader.ts decompresses) opened
 * in place: one header scan, then members read by name, with symlinks and hard links followed (old
 * `docker save` archives link repeated layers). Nothing is extracted to disk.
 */
export class ArchiveMembers {
  private constructor(
    readonly archive: TarArchive,
    readonly label: string,
  ) {}

  /** `keep` small members in memory during the scan (manifest.json, configs, index.json). */
  static async open(path: string, label: string, keep: (m: TarMember) => boolean): Promise<ArchiveMembers> {
    try {
      return new ArchiveMembers(await TarArchive.open(path, keep), label);
    } catch (err) {
      if (err instanceof NotATarError && !(await looksLikeArchive(path))) throw usageError(`${label} is not a tar archive (nor gzip/zstd)`);
      throw archiveOpenError(label, err);
    }
  }

  /** The same opened archive under another name for messages (a sniffed bare path, once its kind is known). */
  withLabel(label: string): ArchiveMembers {
    return new ArchiveMembers(this.archive, label);
  }

  /** The member a name resolves to after following links; undefined if it is missing. */
  resolve(name: string): TarMember | undefined {
    let cur = cleanName(name);
    for (let hops = 0; hops < 16; hops++) {
      // GNU tar run on a directory (`tar -C dir -c .`) names members `./x`; c/image cleans names the same way
      const m = this.archive.getMember(cur) ?? this.archive.getMember(`./${cur}`);
      if (!m) return undefined;
      if (m.info.type === 'symlink') cur = posix.normalize(posix.join(posix.dirname(cur), linkOf(m)));
      else if (m.info.type === 'hardlink') cur = cleanName(linkOf(m));
      else return m;
    }
    throw new NixregError(`${this.label}: too many links resolving ${name}`);
  }

  need(name: string, what: string): TarMember {
    const m = this.resolve(name);
    if (!m) throw usageError(`${this.label} is not a valid image: ${what} ${name} is missing`);
    return m;
  }

  async read(m: TarMember, what: string): Promise<Buffer> {
    try {
      return await readSmall(this.archive.memberData(m), `${this.label}: ${what}`);
    } catch (err) {
      throw memberReadError(this.label, m.name, err);
    }
  }

  /**
   * A member's data as a stream. Layers may be read concurrently; read one after the other in archive order, a
   * compressed archive is inflated once (see TarArchive.memberData).
   */
  stream(m: TarMember): Readable {
    const label = this.label;
    const data = this.archive.memberData(m);
    return Readable.from(
      (async function* () {
        try {
          yield* data;
        } catch (err) {
          throw memberReadError(label, m.name, err);
        }
      })(),
      { objectMode: false },
    );
  }

  close(): Promise<void> {
    return this.archive.close();
  }
}

/** Tar, gzip or zstd by its first block (the tar reader's own message is about a header field otherwise). */
async function looksLikeArchive(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    detectCompression(head.subarray(0, bytesRead));
    return true;
  } catch {
    return false;
  } finally {
    await fh.close();
  }
}

/** `./a//b` → `a/b` (path.Clean without the leading `./`). */
export const cleanName = (name: string): string =>
  posix
    .normalize(name)
    .replace(/^(\.\/)+/, '')
    .replace(/\/+$/, '');

const linkOf = (m: TarMember): string => {
  const l = m.info.linkname;
  return l === undefined ? '' : typeof l === 'string' ? l : l.toString('utf8');
};

function archiveOpenError(label: string, err: unknown): NixregError {
  if (err instanceof NixregError) return new NixregError(`${label}: ${err.message}`, err.exitCode, { code: err.code, retryable: err.retryable });
  if (err instanceof NotATarError) return usageError(`${label} ${err.message}`);
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return usageError(`${label} does not exist`);
  if (code === 'EISDIR') return usageError(`${label} is a directory, not an image archive`);
  if (code?.startsWith('Z_')) return usageError(`${label} is not a valid gzip file (${(err as Error).message})`);
  return usageError(`${label} cannot be read (${describeSystemError(err)})`);
}

function memberReadError(label: string, name: string, err: unknown): NixregError {
  if (err instanceof NixregError) return err;
  if (err instanceof NotATarError) return usageError(`${label} ${err.message}`);
  return new NixregError(`${label}: cannot read member ${name} (${describeSystemError(err)})`);
}
