import { describe, expect, it } from 'vitest';
import { parseStreamConf } from '../../src/nix/stream/conf.js';
import { NixregError } from '../../src/errors.js';

const good = {
  architecture: 'amd64',
  config: {},
  os: 'linux',
  variant: '',
  store_dir: '/nix/store',
  from_image: null,
  store_layers: [['/nix/store/a-x']],
  customisation_layer: '/nix/store/c-layer',
  repo_tag: 'x:y',
  created: 'now',
  mtime: '1970-01-01T00:00:01+00:00',
  uid: 0,
  gid: 0,
  uname: 'u',
  gname: 'g',
};
const parse = (c: object) => () => parseStreamConf(JSON.stringify({ ...good, ...c }), 'conf.json');

describe('image config and owner validation in a stream conf', () => {
  it.each([
    [{ uid: '-5' }, 'conf.json: key "uid" must be between 0 and'],
    [{ gid: -1 }, 'conf.json: key "gid" must be between 0 and'],
    [{ uid: 2 ** 40 }, 'conf.json: key "uid" must be between 0 and'],
    [{ config: { Env: 'PATH=/bin' } }, 'conf.json: config.Env must be a list of strings'],
    [{ config: { Env: ['A=1', 2] } }, 'conf.json: config.Env must be a list of strings'],
    [{ config: { Env: ['=nameless'] } }, 'conf.json: config.Env has an entry without a name'],
    [{ config: { Cmd: 'sh -c x' } }, 'conf.json: config.Cmd must be a list of strings'],
    [{ config: { Entrypoint: { a: 1 } } }, 'conf.json: config.Entrypoint must be a list of strings'],
    [{ config: { User: 0 } }, 'conf.json: config.User must be a string'],
    [{ config: { WorkingDir: ['/'] } }, 'conf.json: config.WorkingDir must be a string'],
    [{ config: { Labels: { a: 1 } } }, 'conf.json: config.Labels must be an object of strings'],
    [{ config: { ExposedPorts: ['80/tcp'] } }, 'conf.json: config.ExposedPorts must be an object'],
  ])('refuses %j with one line naming the field', (c, msg) => {
    let err: unknown;
    try {
      parse(c)();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NixregError);
    expect((err as NixregError).exitCode).toBe(2);
    expect((err as Error).message).toContain(msg);
  });

  it('accepts what docker accepts: Env without "=", nulls, string lists, the largest id', () => {
    const c = parseStreamConf(
      JSON.stringify({
        ...good,
        uid: 4294967294,
        gid: '65534',
        config: { Env: ['INHERIT', 'A=1'], Cmd: null, Entrypoint: ['/bin/sh'], User: '1000:100', Labels: { a: 'b' }, ExposedPorts: { '80/tcp': {} } },
      }),
      'conf.json',
    );
    expect(c.uid).toBe(4294967294);
    expect(c.gid).toBe(65534);
  });
});
