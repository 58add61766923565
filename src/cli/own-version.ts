import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The version in nixreg's own package.json: the nearest one named "nixreg" above this module (tsc or bundle output). */
export function ownVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'nixreg' && pkg.version) return pkg.version;
    } catch {}
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}
