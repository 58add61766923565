import { BLOCK, MAX_OCTAL_SIZE, goTarHeader } from '../../tar/go-ustar.js';

/**
 * Headers of the oci-archive tar. Always exactly one 512-byte block, whatever the size, so a blob's header can be
 * written as a placeholder before its (compressed, hence unknown) size and digest are known and patched in place
 * afterwards. Sizes of 8 GiB and more use GNU base-256 in the size field (read by Go's archive/tar, GNU tar and
 * bsdtar) instead of Go's PAX fallback, whose length would differ from the placeholder's.
 */
export function ociFileHeader(name: string, size: number): Buffer {
  const h = goTarHeader({ name, type: 'file', size: size <= MAX_OCTAL_SIZE ? size : 0 });
  if (size > MAX_OCTAL_SIZE) {
    h.fill(0, 124, 136);
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    fixChecksum(h);
  }
  return h;
}

/** A directory entry (mode 0755), so tools that do not create parents on extraction still work. */
export function ociDirHeader(name: string): Buffer {
  const h = goTarHeader({ name: name.endsWith('/') ? name : `${name}/`, type: 'file', size: 0 });
  h.write('0000755\0', 100, 'latin1');
  h[156] = 0x35; // '5'
  fixChecksum(h);
  return h;
}

function fixChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
}
