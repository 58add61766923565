import type { Writable } from 'node:stream';
import { encodePythonPaxHeader, endOfArchive, padTo512, type PyTarType } from '../tar/python-pax.js';
import { drained } from '../util/drained.js';

/**
 * The output side of `export`: deterministic headers through the project's byte-exact CPython-tarfile encoder
 * (PAX records only where USTAR cannot hold a value, no atime/ctime, fixed field formatting) — reused rather than
 * tar-stream's pack so the same input always gives the same bytes. Ownership is numeric only: uname/gname are
 * left empty, so extracting never maps ids through the host's /etc/passwd and no name can drift between runs.
 */

export interface OutHeader {
  name: string;
  type: Exclude<PyTarType, 'raw'>;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Array<[string, Buffer]>;
}

export class TarOut {
  offset = 0;
  entries = 0;
  /** The output's error, kept so a failed or destroyed output never becomes an unhandled 'error' event. */
  private failed: Error | undefined;
  constructor(private readonly out: Writable) {
    out.on('error', (e: Error) => (this.failed ??= e));
  }

  async write(b: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    if (b.length === 0) return;
    this.offset += b.length;
    if (this.out.write(b)) return;
    // Backpressure: wait for drain, but also stop waiting if the consumer went away (stdout closed, EPIPE).
    await drained(this.out, 'output closed before the archive was complete');
  }

  async header(h: OutHeader): Promise<void> {
    this.entries++;
    await this.write(
      encodePythonPaxHeader({
        name: h.name,
        type: h.type,
        mode: h.mode,
        uid: h.uid,
        gid: h.gid,
        size: h.type === 'file' ? (h.size ?? 0) : 0,
        mtime: h.mtime,
        linkname: h.linkname ?? '',
        devmajor: h.devmajor ?? 0,
        devminor: h.devminor ?? 0,
        paxHeaders: h.xattrs?.length ? h.xattrs : undefined,
      }),
    );
  }

  /** A regular file: header, exactly `size` bytes from `body`, padding. */
  async file(h: OutHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const size = h.size ?? 0;
    await this.header({ ...h, type: 'file' });
    let n = 0;
    for await (const chunk of body) {
      n += chunk.length;
      await this.write(chunk);
    }
    if (n !== size) throw new Error(`file ${h.name}: got ${n} bytes, header says ${size}`);
    await this.write(Buffer.alloc(padTo512(size)));
  }

  async finish(): Promise<void> {
    await this.write(endOfArchive(this.offset));
  }
}
