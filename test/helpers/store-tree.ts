import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, symlink, writeFile, link, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Rebuild test/fixtures/store-tree.json under a temp root R, so that R/nix/store/<hash>-<name>/... holds exactly
 * the closure the reference streams were made from (contents, symlinks, modes; hard-link groups recreated).
 */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

interface Entry {
  path?: string;
  /** Names and targets that are not valid UTF-8 are given as base64 bytes instead. */
  pathB64?: string;
  targetB64?: string;
  linkToB64?: string; // type 'hardlink': a second name for this earlier file
  type: 'dir' | 'file' | 'symlink' | 'hardlink';
  mode: string;
  size?: number;
  sha256?: string;
  contentBase64?: string;
  blob?: string;
  generator?: { name: 'sha256-counter'; seed: string; size: number } | { name: 'repeat'; byteHex: string; size: number };
  target?: string;
}
interface StorePath {
  storePath: string;
  entries: Entry[];
  hardLinkGroups?: string[][];
}

export function generate(g: NonNullable<Entry['generator']>): Buffer {
  if (g.name === 'repeat') return Buffer.alloc(g.size, parseInt(g.byteHex, 16));
  const out = Buffer.allocUnsafe(g.size);
  for (let i = 0, off = 0; off < g.size; i++) off += createHash('sha256').update(`${g.seed}:${i}`).digest().copy(out, off);
  return out;
}

async function contentOf(e: Entry): Promise<Buffer> {
  if (e.contentBase64 !== undefined) return Buffer.from(e.contentBase64, 'base64');
  if (e.blob) return readFile(join(FIXTURES, e.blob));
  if (e.generator) return generate(e.generator);
  throw new Error(`store-tree entry ${e.path} has no content`);
}

/** Materialise the tree under `root` (created if missing); returns root. */
export async function buildStoreTree(root?: string, treeFile = join(FIXTURES, 'store-tree.json')): Promise<string> {
  root ??= await mkdtemp(join(tmpdir(), 'nixreg-store-'));
  const tree = JSON.parse(await readFile(treeFile, 'utf8')) as { storePaths: StorePath[] };
  const dirModes: Array<[string | Buffer, number]> = [];
  for (const sp of tree.storePaths) {
    const base = join(root, sp.storePath);
    await mkdir(dirname(base), { recursive: true });
    const linked = new Map<string, string>(); // member of a hard-link group -> first name
    for (const g of sp.hardLinkGroups ?? []) for (const p of g.slice(1)) linked.set(p, g[0]!);
    const at = (rel: Buffer): Buffer => (rel.length ? Buffer.concat([Buffer.from(base + '/'), rel]) : Buffer.from(base));
    for (const e of sp.entries) {
      const rel = e.pathB64 !== undefined ? Buffer.from(e.pathB64, 'base64') : Buffer.from(e.path!);
      const p = at(rel);
      if (e.type === 'dir') {
        await mkdir(p, { recursive: true });
        dirModes.push([p, parseInt(e.mode, 8)]);
      } else if (e.type === 'symlink') {
        await symlink(e.targetB64 !== undefined ? Buffer.from(e.targetB64, 'base64') : e.target!, p);
      } else if (e.type === 'hardlink') {
        await link(at(Buffer.from(e.linkToB64!, 'base64')), p);
      } else if (e.path !== undefined && linked.has(e.path)) {
        await link(join(base, linked.get(e.path)!), p);
      } else {
        const data = await contentOf(e);
        if (e.sha256 && createHash('sha256').update(data).digest('hex') !== e.sha256) throw new Error(`content of ${e.path} does not match its sha256`);
        await writeFile(p, data);
        await chmod(p, parseInt(e.mode, 8));
      }
    }
  }
  // Directory modes last, children before parents (0555 dirs would block creating their children).
  for (const [p, mode] of dirModes.reverse()) await chmod(p, mode);
  return root;
}

/** Remove a tree made by buildStoreTree (restores write permission first). */
export async function removeStoreTree(root: string): Promise<void> {
  const { execFileSync } = await import('node:child_process');
  execFileSync('chmod', ['-R', 'u+w', root]);
  await rm(root, { recursive: true, force: true });
}
