import { Readable } from 'node:stream';
import { NixregError, integrityError } from '../errors.js';
import { loadBaseImage, type BaseImage } from '../nix/stream/base-image.js';
import type { PushImage, PushLayer } from './conf-source.js';

/**
 * A docker-archive as a push source: `nixreg stream -o image.tar`, `docker save`, skopeo's `docker-archive:`,
 * buildLayeredImage's `.tar.gz`. The archive reader is the one streamLayeredImage's `from_image` uses (plain or
 * gzip'd tar, members located without extracting). The config is pushed byte for byte, so the image ID stays the
 * archive's; each layer is compressed on its way up, and its bytes are checked against the config's diff_ids.
 * Layers are keyed in the push cache by diffID, so a second push of the same archive only HEADs.
 */
export async function loadArchiveImage(file: string): Promise<PushImage> {
  let base: BaseImage;
  try {
    base = await loadBaseImage(file);
  } catch (err) {
    if (err instanceof NixregError) throw new NixregError(err.message.replace(/^from_image /, 'source archive '), err.exitCode);
    throw err;
  }
  const b = base;
  let generated = 0;
  const manifest = JSON.parse((await b.archive.readMember(b.archive.getMember('manifest.json')!)).toString('utf8')) as Array<{ Config: string }>;
  const configBytes = await b.archive.readMember(b.archive.getMember(manifest[0]!.Config)!);
  const diffIDs = b.layers.map((l) => `sha256:${l.diffHex}`);
  const layers: PushLayer[] = b.layers.map((l, index) => ({
    index,
    kind: 'base',
    paths: [l.member.name],
    diffID: `sha256:${l.diffHex}`,
    size: l.member.size,
    open: async () => {
      generated++;
      // a private cursor per read: layers are uploaded in parallel
      return Readable.from(b.archive.openMemberData(l.member), { objectMode: false });
    },
  }));
  return {
    layers,
    config: (got) => {
      if (got.some((d, i) => d !== diffIDs[i])) throw integrityError(`source archive ${file}: its layers do not match its config's diff_ids`);
      return configBytes;
    },
    get generated() {
      return generated;
    },
    close: () => b.archive.close(),
  };
}

/** conf.json (JSON: starts with `{`) or an image archive (tar / gzip)? Only the first bytes are read. */
export async function isConfFile(file: string): Promise<boolean> {
  const { open } = await import('node:fs/promises');
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return true; // let the conf loader report the missing file in its words
  }
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    return head.subarray(0, bytesRead).toString('latin1').trimStart().startsWith('{');
  } finally {
    await fh.close();
  }
}
