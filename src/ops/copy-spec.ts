import { stat } from 'node:fs/promises';
import { usageError } from '../errors.js';

/**
 * `nixreg copy`'s destination names, skopeo's transports (containers-transports(5)):
 * `docker://REF`, `docker-archive:FILE[:NAME[:TAG]]`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`. As in c/image,
 * the path ends at the first ':' after the transport; what follows names the image inside the archive or layout.
 */
export type CopyDestination =
  | { kind: 'registry'; ref: string }
  | { kind: 'docker-archive'; path: string; ref?: string }
  | { kind: 'oci-layout' | 'oci-archive'; path: string; ref?: string };

const DEST_TRANSPORTS = ['docker://', 'docker-archive:', 'oci-archive:', 'oci:'] as const;
const SOURCE_TRANSPORTS = ['docker://', 'docker-archive:', 'oci-archive:', 'oci:', 'conf:'];
const TRANSPORT_LIST = 'docker://REF, docker-archive:FILE[:NAME:TAG], oci:DIR[:TAG] or oci-archive:FILE[:TAG]';

export function parseCopyDestination(spec: string): CopyDestination {
  const prefix = DEST_TRANSPORTS.find((p) => spec.startsWith(p));
  if (!prefix) {
    const named = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(spec)?.[1];
    throw usageError(
      named
        ? `unknown destination transport "${named}:" in ${spec}; write ${TRANSPORT_LIST}`
        : `destination ${spec} names no transport; write ${TRANSPORT_LIST}`,
    );
  }
  const rest = spec.slice(prefix.length);
  if (prefix === 'docker://') {
    if (!rest) throw usageError(`destination ${spec} names no image`);
    return { kind: 'registry', ref: spec };
  }
  const colon = rest.indexOf(':');
  const path = colon < 0 ? rest : rest.slice(0, colon);
  const ref = colon < 0 ? undefined : rest.slice(colon + 1);
  if (!path) throw usageError(`destination ${spec} has no path`);
  if (ref === '') throw usageError(`destination ${spec} ends in ':'; name the image after it or leave the ':' out`);
  const kind = prefix === 'docker-archive:' ? 'docker-archive' : prefix === 'oci:' ? 'oci-layout' : 'oci-archive';
  return ref === undefined ? { kind, path } : { kind, path, ref };
}

/**
 * A source naming a transport nixreg does not know (`dir:`, `containers-storage:`, a typo) is refused as such,
 * rather than looked for as a file of that name. A path that exists is left to openSource's sniffing.
 */
export async function checkSourceTransport(spec: string): Promise<void> {
  if (SOURCE_TRANSPORTS.some((p) => spec.startsWith(p))) return;
  const named = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(spec)?.[1];
  if (!named || named.length === 1) return; // no transport, or a Windows-style drive letter: a path
  if (
    await stat(spec).then(
      () => true,
      () => false,
    )
  )
    return;
  throw usageError(
    `unknown source transport "${named}:" in ${spec}; write docker://REF, docker-archive:FILE, oci:DIR[:REF], oci-archive:FILE[:REF], conf:FILE or a path`,
  );
}
