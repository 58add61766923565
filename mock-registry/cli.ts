#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { AuthOptions } from './auth.js';
import type { FaultKind, FaultRule } from './faults.js';
import type { RouteKind } from './names.js';
import { QUIRK_PROFILES } from './quirks-profiles.js';
import { startRegistry } from './server.js';

/**
 * `npm run registry -- --port 5000 [...]`: the mock registry in the foreground. Faults on the command line use a
 * compact form, e.g. `--fault kind=status,status=429,route=blob+manifest,method=GET,times=3`.
 */
const FAULT_KINDS: FaultKind[] = ['status', 'reset', 'drip', 'flip', 'ignore-range', 'stall'];
const ROUTE_KINDS: RouteKind[] = ['ping', 'manifest', 'blob', 'upload', 'tags', 'catalog', 'referrers', 'token'];
const NUMERIC = ['status', 'retryAfter', 'afterBytes', 'dripBytes', 'dripIntervalMs', 'stallMs', 'probability', 'skip', 'times'];

export function parseFault(spec: string): FaultRule {
  const rule: Record<string, unknown> = {};
  for (const part of spec.split(',')) {
    const [k, v] = part.split('=', 2) as [string, string | undefined];
    if (v === undefined) throw new Error(`fault "${spec}": expected key=value, got "${part}"`);
    if (k === 'route') {
      const routes = v.split('+');
      for (const r of routes) if (!ROUTE_KINDS.includes(r as RouteKind)) throw new Error(`fault "${spec}": unknown route "${r}" (${ROUTE_KINDS.join(', ')})`);
      rule.route = routes;
    } else if (k === 'method') rule.method = v.split('+').map((m) => m.toUpperCase());
    else if (k === 'kind') {
      if (!FAULT_KINDS.includes(v as FaultKind)) throw new Error(`fault "${spec}": unknown kind "${v}" (${FAULT_KINDS.join(', ')})`);
      rule.kind = v;
    } else if (NUMERIC.includes(k)) {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`fault "${spec}": ${k} must be a number`);
      rule[k] = n;
    } else throw new Error(`fault "${spec}": unknown key "${k}"`);
  }
  if (!rule.kind) throw new Error(`fault "${spec}": kind= is required`);
  return rule as unknown as FaultRule;
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('mock-registry')
    .usage('$0 [options]\n\nA spec-conformant OCI registry for tests, with auth and fault injection.')
    .strict()
    .options({
      port: { type: 'number', default: 5000, describe: 'port to listen on (0 = any free port)' },
      host: { type: 'string', default: '127.0.0.1', describe: 'interface to bind (loopback unless you say otherwise)' },
      storage: { type: 'string', describe: 'keep content in this directory (survives restarts); default: in memory' },
      auth: { choices: ['none', 'basic', 'bearer'] as const, default: 'none' as const, describe: 'authentication mode' },
      users: { type: 'string', describe: 'file of user:password lines (basic and bearer modes)' },
      user: { type: 'string', array: true, describe: 'a user as user:password (repeatable)' },
      'anonymous-pull': { type: 'boolean', default: false, describe: 'allow pulls without credentials' },
      service: { type: 'string', default: 'nixreg-mock', describe: 'bearer token service name' },
      'token-ttl': { type: 'number', default: 300, describe: 'bearer token lifetime, seconds' },
      'tls-cert': { type: 'string', describe: 'PEM certificate file: serve HTTPS' },
      'tls-key': { type: 'string', describe: 'PEM private key file for --tls-cert' },
      fault: {
        type: 'string',
        array: true,
        describe:
          'inject a fault: kind=status|reset|drip|flip|ignore-range|stall,route=..,method=..,status=..,retryAfter=..,afterBytes=..,dripBytes=..,dripIntervalMs=..,stallMs=..,probability=..,skip=..,times=.. (repeatable)',
      },
      'faults-file': { type: 'string', describe: 'JSON file with an array of fault rules (or {seed, rules})' },
      seed: { type: 'number', default: 1, describe: 'seed for probabilistic faults' },
      'chunk-min-length': { type: 'number', describe: 'OCI-Chunk-Min-Length to advertise (0 = none; default 65536)' },
      'page-size': { type: 'number', describe: 'page size for tags/list and _catalog when the client sends no n' },
      delete: { type: 'boolean', default: true, describe: 'allow DELETE (--no-delete: 405)' },
      'anonymous-mount': { type: 'boolean', describe: 'allow blob mounts without from= (default true)' },
      quirks: {
        type: 'string',
        describe: `behave like a real registry: ${Object.keys(QUIRK_PROFILES).join(', ')} (comma-separated; the profile's auth mode wins over --auth)`,
      },
      quiet: { type: 'boolean', default: false, describe: 'do not print a line per request' },
    })
    .check((a) => {
      if (!!a['tls-cert'] !== !!a['tls-key']) throw new Error('--tls-cert and --tls-key go together');
      return true;
    })
    .help()
    .alias('h', 'help')
    .parseAsync();

  const users: Record<string, string> = {};
  for (const u of argv.user ?? []) {
    const i = u.indexOf(':');
    if (i <= 0) throw new Error(`--user ${u.split(':')[0]}: expected user:password`);
    users[u.slice(0, i)] = u.slice(i + 1);
  }
  const auth: AuthOptions = {
    mode: argv.auth,
    users,
    usersFile: argv.users,
    anonymousPull: argv['anonymous-pull'],
    service: argv.service,
    tokenTtlSeconds: argv['token-ttl'],
  };
  let rules: FaultRule[] = (argv.fault ?? []).map(parseFault);
  let seed = argv.seed;
  if (argv['faults-file']) {
    const doc = JSON.parse(readFileSync(argv['faults-file'], 'utf8'));
    rules = rules.concat(Array.isArray(doc) ? doc : doc.rules);
    if (!Array.isArray(doc) && typeof doc.seed === 'number') seed = doc.seed;
  }
  const reg = await startRegistry({
    port: argv.port,
    host: argv.host,
    storage: argv.storage,
    auth,
    tls: argv['tls-cert'] ? { certFile: argv['tls-cert'], keyFile: argv['tls-key'] } : undefined,
    faults: { seed, rules },
    chunkMinLength: argv['chunk-min-length'],
    pageSize: argv['page-size'],
    deleteEnabled: argv.delete,
    anonymousMount: argv['anonymous-mount'],
    quirks: argv.quirks,
    onRequest: argv.quiet
      ? undefined
      : (e) =>
          process.stderr.write(
            `${e.time} ${e.method} ${e.url} ${e.status} ${e.durationMs}ms${e.user ? ` user=${e.user}` : ''}${e.faults ? ` faults=${e.faults.join('+')}` : ''}\n`,
          ),
  });
  process.stdout.write(`listening on ${reg.url}\n`);
  const stop = () => {
    void reg.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: NodeJS.ErrnoException) => {
  const msg = err.code === 'EADDRINUSE' ? `address already in use (${err.message.replace(/^.*EADDRINUSE:?\s*/, '')})` : err.message;
  process.stderr.write(`mock-registry: ${msg.split('\n')[0]}\n`);
  process.exit(1);
});
