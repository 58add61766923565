import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSink, type ByteSink } from '../../src/nix/stream/sink.js';
import { NixpkgsArchiveWriter, layerMemberPath } from '../../src/sink/nixpkgs-archive/archive-writer.js';

/**
 * The nixpkgs-archive writer against CPython's tarfile, which stream_layered_image.py writes with
 * (`tarfile.open(mode="w|", format=tarfile.PAX_FORMAT)`): the same members give the same bytes, whether a layer's
 * name is known first or patched in afterwards.
 */

/** An in-memory file; `seekable` adds patch() and seek() (finish then cuts what lies past the end, as FileSink does). */
function memorySink(seekable: boolean): ByteSink & { bytes(): Buffer } {
  let buf = Buffer.alloc(0);
  let pos = 0;
  const sink: ByteSink & { bytes(): Buffer } = {
    async write(b) {
      if (pos + b.length > buf.length) buf = Buffer.concat([buf, Buffer.alloc(pos + b.length - buf.length)]);
      b.copy(buf, pos);
      pos += b.length;
    },
    async finish() {
      buf = buf.subarray(0, pos);
    },
    bytes: () => buf,
  };
  if (seekable) {
    sink.patch = async (offset, b) => void b.copy(buf, offset);
    sink.seek = async (offset) => void (pos = offset);
  }
  return sink;
}

const MTIME = 1700000000;
const sha256Hex = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');

/** Spool files go to os.tmpdir(): a private one, so the test sees exactly the writer's. */
let spoolRoot: string;
let savedTmp: string | undefined;
beforeAll(() => {
  spoolRoot = mkdtempSync(join(tmpdir(), 'nixreg-writer-test-'));
  savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = spoolRoot;
});
afterAll(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  rmSync(spoolRoot, { recursive: true, force: true });
});
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

async function write(seekable: boolean, known: boolean, retried = false, file?: ByteSink, firstAttempt = 1700): Promise<Buffer> {
  const sink = file ?? memorySink(seekable);
  const w = new NixpkgsArchiveWriter(sink, MTIME);
  const member = await w.beginLayer(layer.length, 'layer 1', (name) => w.regular(name, layer.length), {
    diffID: known ? diffID : undefined,
    rewindable: retried,
  });
  if (retried) {
    // a first attempt that got part-way with other bytes (an upload that failed), then the layer from its start
    await member.put(Buffer.alloc(firstAttempt, 9));
    await member.rewind();
  }
  for (let off = 0; off < layer.length; off += 1000) await member.put(layer.subarray(off, off + 1000));
  await member.finish(diffID);
  await w.addFile('c.json', config);
  await w.addFile('manifest.json', manifest);
  const size = await w.finish();
  if (file) return Buffer.alloc(size);
  expect(size).toBe((sink as ReturnType<typeof memorySink>).bytes().length);
  return (sink as ReturnType<typeof memorySink>).bytes();
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
    await w.addMember(w.regular(layerMemberPath(diffID), layer.length), {
      chunks: (async function* () {
        yield layer;
      })(),
      what: 'layer 1',
    });
    await w.addFile('c.json', config);
    await w.addFile('manifest.json', manifest);
    await w.finish();
    expect(sink.bytes().equals(pythonArchive())).toBe(true);
  });

  it('a layer of unknown diffID on an output that cannot be patched is spooled, then copied in header first', async () => {
    expect(new NixpkgsArchiveWriter(memorySink(false), MTIME).canPatch).toBe(false);
    expect((await write(false, false)).equals(pythonArchive())).toBe(true);
    expect(readdirSync(spoolRoot)).toEqual([]);
  });

  it('a rewound layer (a retried upload through the tee) leaves exactly one copy, seekable or spooled', async () => {
    const py = pythonArchive();
    for (const [seekable, known] of [
      [true, false],
      [true, true],
      [false, false],
      [false, true],
    ] as const)
      expect((await write(seekable, known, true)).equals(py), `seekable=${seekable} known=${known}`).toBe(true);
    expect(readdirSync(spoolRoot)).toEqual([]);
  });

  it('on a real file (FileSink), a rewound layer leaves exactly the archive: nothing of the first attempt past its end', async () => {
    const path = join(spoolRoot, 'out.tar');
    const fh = await open(path, 'w+');
    try {
      // the first attempt runs past where the whole archive ends
      await write(true, false, true, new FileSink(fh, path, true), 64 << 10);
    } finally {
      await fh.close();
    }
    expect(readFileSync(path).equals(pythonArchive())).toBe(true);
    rmSync(path);
  });

  it('FileSink with sharedChunks: each write has landed when write() resolves (the tee passes the chunk on)', async () => {
    const path = join(spoolRoot, 'shared.bin');
    const fh = await open(path, 'w+');
    const chunk = Buffer.alloc(8 << 20, 1);
    try {
      const sink = new FileSink(fh, path, true);
      await sink.write(chunk);
      chunk.fill(2); // what the next stage (or the chunk pool) may do with it once write() resolved
      await sink.finish();
    } finally {
      await fh.close();
    }
    const got = readFileSync(path);
    expect(got.length).toBe(8 << 20);
    expect(got.every((b) => b === 1)).toBe(true);
    rmSync(path);
  });

  it('a diffID given beforehand that the bytes do not match is an integrity error; abort removes spool files', async () => {
    for (const seekable of [true, false]) {
      const w = new NixpkgsArchiveWriter(memorySink(seekable), MTIME);
      const member = await w.beginLayer(layer.length, 'layer 1', (name) => w.regular(name, layer.length), { diffID: sha256Hex('other'), rewindable: true });
      await member.put(layer);
      await expect(member.finish(diffID)).rejects.toMatchObject({ code: 'E_INTEGRITY', message: expect.stringMatching(/^layer 1 came out as sha256:/) });
    }
    const w = new NixpkgsArchiveWriter(memorySink(false), MTIME);
    const member = await w.beginLayer(layer.length, 'layer 2', (name) => w.regular(name, layer.length));
    await member.put(layer.subarray(0, 100));
    expect(readdirSync(spoolRoot)).toHaveLength(1);
    await w.abort();
    expect(readdirSync(spoolRoot)).toEqual([]);
  });

  it('names the member whose data is shorter or longer than its header says, as one NixregError', async () => {
    const w = new NixpkgsArchiveWriter(memorySink(true), MTIME);
    const short = w.addMember(w.regular('a', 10), {
      chunks: (async function* () {
        yield Buffer.alloc(4);
      })(),
      what: 'layer 2',
    });
    await expect(short).rejects.toThrow(/^layer 2 came out 4 bytes, expected 10$/);
    const member = await w.beginLayer(10, 'layer 3', (name) => w.regular(name, 10));
    await member.put(Buffer.alloc(11));
    await expect(member.finish(diffID)).rejects.toThrow(/^layer 3 came out 11 bytes, expected 10$/);
    const failing = w.addMember(w.regular('b', 10), {
      chunks: (async function* () {
        yield Buffer.alloc(1);
        throw new Error('EIO: read failed');
      })(),
      what: 'layer 4',
    });
    await expect(failing).rejects.toThrow(/^layer 4: EIO: read failed$/);
  });
});
