import { describe, expect, it } from 'vitest';
import { nextPageLink } from '../../src/registry/client.js';

// The tag list's paging: distribution sends `Link: </v2/<name>/tags/list?last=…&n=…>; rel="next"` (RFC 8288).
describe('nextPageLink', () => {
  it('finds rel="next" among other links, quoted or not, and only as a whole relation type', () => {
    expect(nextPageLink('</v2/a/tags/list?last=b&n=2>; rel="next"')).toBe('/v2/a/tags/list?last=b&n=2');
    expect(nextPageLink('<https://r.example/v2/a/tags/list?last=p>; rel="prev", <https://r.example/v2/a/tags/list?last=x>; rel=next')).toBe(
      'https://r.example/v2/a/tags/list?last=x',
    );
    expect(nextPageLink('<u>; title="t"; REL="prev next"')).toBe('u');
    expect(nextPageLink('<u>; rel="nextish"')).toBeUndefined();
    expect(nextPageLink('<u>; rel="prev"')).toBeUndefined();
    expect(nextPageLink(undefined)).toBeUndefined();
    expect(nextPageLink('')).toBeUndefined();
  });
});
