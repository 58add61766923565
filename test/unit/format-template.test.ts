import { describe, expect, it } from 'vitest';
import { NixregError } from '../../src/errors.js';
import { renderTemplate } from '../../src/inspect/format-template.js';

/** Go text/template printing rules for the subset inspect --format takes (https://pkg.go.dev/text/template). */
const data = {
  Digest: 'sha256:ab',
  RepoTags: ['1', 'latest'],
  Labels: { 'org.opencontainers.image.version': '1.0', b: '2', a: '1' },
  Env: null,
  Config: { Digest: 'sha256:cd', Size: 12 },
  Layers: [],
  Index: null,
};

describe('renderTemplate', () => {
  it.each([
    ['{{.Digest}}', 'sha256:ab\n'],
    ['{{ .Digest }}\n', 'sha256:ab\n'],
    ['{{.RepoTags}} {{.Layers}}', '[1 latest] []\n'],
    ['{{.Labels}}', 'map[a:1 b:2 org.opencontainers.image.version:1.0]\n'],
    ['{{.Labels.a}}|{{.Labels.zzz}}|{{index .Labels "org.opencontainers.image.version"}}', '1|<no value>|1.0\n'],
    ['{{.Env}}', '[]\n'],
    ['{{.Config.Size}}\\t{{json .Config}}', '12\t{"Digest":"sha256:cd","Size":12}\n'],
    ['{{.Index.Digest}}', '<no value>\n'],
    ['{{json .Index}} {{json .Env}}', 'null null\n'],
    ['plain', 'plain\n'],
  ])('%s', (template, want) => {
    expect(renderTemplate(template, data)).toBe(want);
  });

  it.each([
    ['{{if .Digest}}x{{end}}', /outside the supported subset/],
    ['{{.Digest | printf "%s"}}', /outside the supported subset/],
    ['}}', /"}}" without "{{"/],
    ['{{.Config}}', /is an object; print it with \{\{json \.Config\}\}/],
    ['{{.Nope}}', /no field Nope; the fields are Digest, RepoTags, Labels/],
    ['{{.RepoTags.x}}', /RepoTags has no field x/],
    ['{{json Digest}}', /"Digest" is not a field/],
  ])('%s is a usage error', (template, message) => {
    let err: unknown;
    try {
      renderTemplate(template, data);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NixregError);
    expect((err as NixregError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });
});
