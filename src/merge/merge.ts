import { createHash } from 'node:crypto';
import { PassThrough, type Writable } from 'node:stream';
import { decompressByMagic } from '../compression/decompress.js';
import { integrityError, NixregError, usageError } from '../errors.js';
import type { PyTarInfo } from '../tar/python-pax.js';
import { WritableSink } from '../nix/stream/sink.js';
import { NixpkgsArchiveWriter } from '../sink/nixpkgs-archive/archive-writer.js';
import type { TarMember } from '../nix/stream/tar-reader.js';
import { ArchiveMembers, cleanName } from '../source/archive-members.js';
import { keepArchiveJson, normalTag, readArchiveManifest, type DockerArchiveEntry } from '../source/docker-archive.js';
import { parseJson } from '../source/verify.js';

/**
 * dockerTools.mergeImages without unpacking: nixpkgs untars every input into one directory (`cp --update=none`,
 * so the first file of a name wins), concatenates the `manifest.json` arrays and merges the `repositories`
 * objects (`jq -s add`), then tars the directory. Here members are copied from the inputs in place, in input
 * order, each name once; a layer already stored under another name (same diffID: a skopeo `<hex>.tar` and a
 * stream `<hex>/layer.tar`) is stored once too, its manifest entry pointing at the first copy. Every layer is
 * verified against its diffID while it is copied (one pass), so a corrupt input never yields an archive.
 *
 * Duplicate tags: in nixpkgs' output both manifest.json entries keep the tag and `docker load` applies them in
 * order, so the LAST image wins, while c/image (skopeo, podman) picks the FIRST. We make the result unambiguous
 * with docker's meaning: the last input keeps the tag, earlier entries lose it, and a warning says so.
 */
export interface MergeInput {
  path: string;
}

export interface MergePlan {
  inputs: Array<{ path: string; archive: ArchiveMembers; entries: DockerArchiveEntry[]; repositories: Record<string, Record<string, string>> | null }>;
  /** Output members in order: the input member to copy (manifest.json and repositories are generated). */
  members: Array<{ input: number; member: TarMember; name: string; diffID?: string }>;
  manifest: DockerArchiveEntry[];
  repositories: Record<string, Record<string, string>> | null;
  /** Layer references over all input images (so `layersShared` = references not stored again). */
  layerRefs: number;
  warnings: string[];
}

export interface MergeResult {
  images: number;
  layersStored: number;
  layersShared: number;
  size: number;
  warnings: string[];
}

const CONTROL = new Set(['manifest.json', 'repositories']);

export async function planMerge(paths: string[]): Promise<MergePlan> {
  if (paths.length === 0) throw usageError('merge needs at least one input archive');
  const inputs: MergePlan['inputs'] = [];
  try {
    for (const path of paths) {
      const archive = await ArchiveMembers.open(path, `merge input ${path}`, keepArchiveJson);
      inputs.push({ path, archive, entries: [], repositories: null });
      const inp = inputs[inputs.length - 1]!;
      inp.entries = await readArchiveManifest(archive);
      const repo = archive.resolve('repositories');
      if (repo) inp.repositories = parseJson(await archive.read(repo, 'repositories'), `${archive.label}: repositories`);
    }
    return buildPlan(inputs);
  } catch (err) {
    await Promise.all(inputs.map((i) => i.archive.close()));
    throw err;
  }
}

function buildPlan(inputs: MergePlan['inputs']): MergePlan {
  const warnings: string[] = [];
  const members: MergePlan['members'] = [];
  const byName = new Map<string, { diffID?: string }>(); // output member name → what it holds
  const byDiffID = new Map<string, string>(); // diffID → output member name holding that layer
  const manifest: DockerArchiveEntry[] = [];
  inputs.forEach((inp, k) => {
    const a = inp.archive;
    // Layer members of this input with the diffID each must hash to (from the entries' configs).
    const layerDiff = new Map<string, string>();
    const rename = new Map<string, string>(); // layer name in this input → name in the output
    const linked = new Set<string>(); // names other members link to: such a layer keeps its own name
    for (const m of a.archive.members) if (m.info.type === 'symlink' || m.info.type === 'hardlink') linked.add(a.resolve(m.name)?.name ?? '');
    for (const e of inp.entries) {
      const cfgMember = a.need(e.Config, 'config');
      if (!cfgMember.data) throw usageError(`${a.label}: config ${e.Config} is too large or not a .json member`);
      const ids = parseJson<{ rootfs?: { diff_ids?: unknown } }>(cfgMember.data, `${a.label}: config ${e.Config}`)?.rootfs?.diff_ids;
      if (!Array.isArray(ids) || ids.length !== e.Layers.length || ids.some((d) => typeof d !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(d)))
        throw usageError(`${a.label} is not a consistent image: ${e.Config} does not list one sha256 diff_id per layer of manifest.json`);
      e.Layers.forEach((l, i) => {
        const m = a.need(l, 'layer');
        const prev = layerDiff.get(m.name);
        if (prev && prev !== ids[i]) throw integrityError(`${a.label}: layer ${m.name} is listed with two diffIDs (${prev}, ${ids[i]})`);
        layerDiff.set(m.name, ids[i] as string);
      });
    }
    for (const [name, diffID] of layerDiff) {
      const stored = byDiffID.get(diffID);
      if (stored !== undefined && stored !== cleanName(name) && !linked.has(name)) rename.set(name, stored);
    }
    for (const m of a.archive.members) {
      const name = cleanName(m.name); // `./x` (GNU tar of a directory) and `x` are one file, as for cp
      if (name === '.' || name === '' || CONTROL.has(name) || rename.has(m.name)) continue;
      const diffID = layerDiff.get(m.name);
      const have = byName.get(name);
      if (have) {
        if (diffID && have.diffID && have.diffID !== diffID)
          throw integrityError(`${a.label}: member ${name} holds diffID ${diffID}, but an earlier input's ${name} holds ${have.diffID}`);
        continue; // cp --update=none: the first file of a name wins (same name = same content in image archives)
      }
      byName.set(name, diffID ? { diffID } : {});
      if (diffID && !byDiffID.has(diffID)) byDiffID.set(diffID, name);
      members.push({ input: k, member: m, name, ...(diffID ? { diffID } : {}) });
    }
    for (const e of inp.entries) {
      manifest.push({
        Config: cleanName(a.need(e.Config, 'config').name),
        RepoTags: e.RepoTags ?? null,
        Layers: e.Layers.map((l) => {
          const n = a.need(l, 'layer').name;
          return rename.get(n) ?? cleanName(n);
        }),
      });
    }
  });
  // The same image from two inputs (same config and layers) becomes one entry carrying both inputs' tags.
  for (let i = 0; i < manifest.length; i++) {
    for (let j = manifest.length - 1; j > i; j--) {
      const a = manifest[i]!;
      const b = manifest[j]!;
      if (a.Config === b.Config && a.Layers.join('\0') === b.Layers.join('\0')) {
        const tags = [...(a.RepoTags ?? []), ...(b.RepoTags ?? [])];
        a.RepoTags = tags.filter((t, k) => tags.findIndex((u) => (normalTag(u) ?? u) === (normalTag(t) ?? t)) === k);
        manifest.splice(j, 1);
      }
    }
  }
  // Duplicate tags: the last image keeps it (docker load order), earlier entries drop it.
  const owner = new Map<string, number>();
  manifest.forEach((e, i) => (e.RepoTags ?? []).forEach((t) => owner.set(normalTag(t) ?? t, i)));
  manifest.forEach((e, i) => {
    if (!e.RepoTags) return;
    const kept = e.RepoTags.filter((t) => owner.get(normalTag(t) ?? t) === i);
    for (const t of e.RepoTags) if (!kept.includes(t)) warnings.push(`tag ${t} is on several inputs; the last one (as docker load does) keeps it`);
    e.RepoTags = kept;
  });
  let repositories: MergePlan['repositories'] = null;
  for (const inp of inputs) {
    if (!inp.repositories) continue;
    repositories ??= {};
    for (const [name, tags] of Object.entries(inp.repositories)) repositories[name] = { ...(repositories[name] ?? {}), ...tags };
  }
  const layerRefs = inputs.reduce((n, inp) => n + inp.entries.reduce((m, e) => m + e.Layers.length, 0), 0);
  return { inputs, members, manifest, repositories, layerRefs, warnings: [...new Set(warnings)] };
}

/**
 * Write the merged archive through the nixpkgs-archive writer: member headers re-serialised (PAX, as
 * stream_layered_image.py writes them), data copied, layers verified on the way; manifest.json and repositories last.
 */
export async function writeMerge(plan: MergePlan, out: Writable, label = 'output'): Promise<MergeResult> {
  const archive = new NixpkgsArchiveWriter(new WritableSink(out, label, false), 0);
  let layersStored = 0;
  for (const { input, member, name, diffID } of plan.members) {
    const a = plan.inputs[input]!.archive;
    const info = outputInfo(member, name);
    const hasData = member.info.type === 'file' || member.info.type === 'raw';
    if (!hasData) {
      await archive.addMember(info);
      continue;
    }
    const what = `${a.label}: layer ${member.name}`;
    const verify = diffID ? layerVerifier(what, diffID) : undefined;
    await archive.addMember(info, {
      chunks: a.archive.memberData(member),
      what: `${a.label}: ${member.name}`,
      onChunk: verify ? (c) => verify.push(c) : undefined,
      sizeError: () => usageError(`${a.label} is truncated inside ${member.name}`),
    });
    await verify?.done();
    if (diffID) layersStored++;
  }
  await archive.addFile('manifest.json', Buffer.from(JSON.stringify(plan.manifest)));
  if (plan.repositories) await archive.addFile('repositories', Buffer.from(JSON.stringify(plan.repositories)));
  const size = await archive.finish();
  return { images: plan.manifest.length, layersStored, layersShared: plan.layerRefs - layersStored, size, warnings: plan.warnings };
}

/** The member's header under its clean name; a hard link then points at its target's clean name too. */
function outputInfo(m: TarMember, name: string): PyTarInfo {
  if (name === m.name && m.info.type !== 'hardlink') return m.info;
  const info: PyTarInfo = { ...m.info, name };
  if (m.info.type === 'hardlink' && m.info.linkname !== undefined) info.linkname = cleanName(String(m.info.linkname));
  return info;
}

/**
 * Checks a layer against its diffID while it is copied: the bytes go through decompressByMagic (a plain tar
 * passes untouched; a gzip/zstd member is inflated) into one sha256.
 */
function layerVerifier(what: string, diffID: string) {
  const side = new PassThrough();
  const plain = decompressByMagic(side);
  const hash = createHash('sha256');
  const finished = new Promise<void>((res, rej) => {
    plain.on('data', (c: Buffer) => hash.update(c));
    plain.on('end', res);
    plain.on('error', rej);
  });
  finished.catch(() => {});
  return {
    push: async (c: Buffer) => {
      if (!side.write(c)) await Promise.race([new Promise((r) => side.once('drain', r)), finished]);
    },
    done: async () => {
      side.end();
      try {
        await finished;
      } catch (err) {
        throw err instanceof NixregError ? new NixregError(`${what}: ${err.message}`, err.exitCode) : err;
      }
      const got = 'sha256:' + hash.digest('hex');
      if (got !== diffID) throw integrityError(`${what}: content hashes to ${got}, but its config's diff_id is ${diffID}`);
    },
  };
}

export async function closePlan(plan: MergePlan): Promise<void> {
  await Promise.all(plan.inputs.map((i) => i.archive.close()));
}
