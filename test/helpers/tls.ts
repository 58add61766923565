import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './tools.js';

export interface TestCert {
  dir: string;
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** DER of the certificate, base64 (for a JWT x5c header). */
  certDerBase64: string;
}

/** A self-signed RSA certificate for 127.0.0.1 (IP SAN) and localhost, made by openssl. */
export function makeSelfSignedCert(cn = '127.0.0.1', dir = mkdtempSync(join(tmpdir(), 'nixreg-tls-'))): TestCert {
  requireTool('openssl');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  const certPem = readFileSync(certFile, 'utf8');
  const der = execFileSync('openssl', ['x509', '-in', certFile, '-outform', 'DER']);
  return { dir, certFile, keyFile, certPem, keyPem: readFileSync(keyFile, 'utf8'), certDerBase64: der.toString('base64') };
}
