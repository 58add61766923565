import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NixregError } from '../../src/errors.js';
import type { ByteSink } from '../../src/nix/stream/sink.js';
import { NixpkgsArchiveWriter, layerMemberPath } from '../../src/sink/nixpkgs-archive/archive-writer.js';

/**
 * The nixpkgs-archive writer against CPython's tarfile, which stream_layered_image.py writes with
 * (`tarfile.open(mode="w|", format=tarfile.PAX_FORMAT)`): the same members give the same bytes, whether a layer's
 * name is known first or patched in afterwards.
 */

/** An in-memory sink; `seekable` adds patch(). */
function memorySink(seekable: boolean): ByteSink & { bytes(): Buffer } {
  let buf = Buffer.alloc(0);
  const sink: ByteSink & { bytes(): Buffer } = {
    async write(b) {
      buf = Buffer.concat([buf, Buffer.from(b)]);
    },
    async finish() {},
    bytes: () => buf,
  };
  if (seekable) sink.patch = async (offset, b) => void b.copy(buf, offset);
  return sink;
}

const MTIME = 1700000000;
const layer = Buffer.alloc(3000, 7);
const diffID = 'sha256:' + createHash('sha256').update(layer).digest('hex');
const config = Buffer.from('{"rootfs": {"diff_ids": ["x"]}}');
const manifest = Buffer.from('[{"Config": "c.json"}]');

/** What Python's tarfile writes for: the layer (named by its diffID), the config, manifest.json. */
function pythonArchive(): Buffer {
  const script = `
import io, sys, tarfile
def add(t, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data); ti.mtime = ${MTIME}; ti.mode = 0o644; ti.uname = ""; ti.gname = ""
    t.addfile(ti, io.BytesIO(data))
out = io.BytesIO()
with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as t:
    add(t, "${layerMemberPath(diffID)}", bytes([7]) * ${layer.length})
    add(t, "c.json", ${JSON.stringify(config.toString())}.encode())
    add(t, "manifest.json", ${JSON.stringify(manifest.toString())}.encode())
sys.stdout.buffer.write(out.getvalue())
`;
  const r = spawnSync('python3', ['-c', script], { maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return r.stdout;
}

async function write(seekable: boolean, known: boolean): Promise<Buffer> {
  const sink = memorySink(seekable);
  const w = new NixpkgsArchiveWriter(sink, MTIME);
  const member = await w.beginLayer(layer.length, 'layer 1', (name) => w.regular(name, layer.length), known ? diffID : undefined);
  for (let off = 0; off < layer.length; off += 1000) await member.put(layer.subarray(off, off + 1000));
  await member.finish(diffID);
  await w.addFile('c.json', config);
  await w.addFile('manifest.json', manifest);
  const size = await w.finish();
  expect(size).toBe(sink.bytes().length);
  return sink.bytes();
}

describe('NixpkgsArchiveWriter', () => {
  it('writes the bytes Python tarfile writes, with the layer name known first or patched in afterwards', async () => {
    const py = pythonArchive();
    expect((await write(true, false)).equals(py)).toBe(true);
    expect((await write(true, true)).equals(py)).toBe(true);
    expect((await write(false, true)).equals(py)).toBe(true);
  });

  it('addMember gives the same bytes as beginLayer for a known diffID', async () => {
    const sink = memorySink(false);
    const w = new NixpkgsArchiveWriter(sink, MTIME);
    await w.addMember(w.regular(layerMemberPath(diffID), layer.length), { chunks: (async function* () { yield layer; })(), what: 'layer 1' });
    await w.addFile('c.json', config);
    await w.addFile('manifest.json', manifest);
    await w.finish();
    expect(sink.bytes().equals(pythonArchive())).toBe(true);
  });

  it('refuses a layer of unknown diffID on an output that cannot be patched', async () => {
    const w = new NixpkgsArchiveWriter(memorySink(false), MTIME);
    expect(w.canPatch).toBe(false);
    await expect(w.beginLayer(10, 'layer 1', (name) => w.regular(name, 10))).rejects.toThrow(NixregError);
  });

  it('names the member whose data is shorter or longer than its header says, as one NixregError', async () => {
    const w = new NixpkgsArchiveWriter(memorySink(true), MTIME);
    const short = w.addMember(w.regular('a', 10), { chunks: (async function* () { yield Buffer.alloc(4); })(), what: 'layer 2' });
    await expect(short).rejects.toThrow(/^layer 2 came out 4 bytes, expected 10$/);
    const member = await w.beginLayer(10, 'layer 3', (name) => w.regular(name, 10));
    await member.put(Buffer.alloc(11));
    await expect(member.finish(diffID)).rejects.toThrow(/^layer 3 came out 11 bytes, expected 10$/);
    const failing = w.addMember(w.regular('b', 10), { chunks: (async function* () { yield Buffer.alloc(1); throw new Error('EIO: read failed'); })(), what: 'layer 4' });
    await expect(failing).rejects.toThrow(/^layer 4: EIO: read failed$/);
  });
});
