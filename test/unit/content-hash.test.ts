/**
 * The content hash a source record is stored with (src/sync/ingest.ts): a re-sync settles a record
 * as unchanged when the hash of what it delivers equals the stored one. So the hash of a given
 * record must never change between releases, or every record of every store looks changed at the
 * next sync (and is written, logged and sent to webhooks again). Fixed values, computed once.
 */
import { describe, expect, it } from 'vitest';
import { contentHash } from '../../src/sync/ingest.ts';

describe('content hash', () => {
  it('stays what it was for the same type and data, whatever the order of its members', () => {
    expect(contentHash('person', { raw: { familyName: 'Synthetic', givenName: 'Ada' } })).toBe('tRmxAO_YA0Qx1_LrT-A1xT9OSFxwgsgr');
    expect(contentHash('person', { raw: { givenName: 'Ada', familyName: 'Synthetic' } })).toBe('tRmxAO_YA0Qx1_LrT-A1xT9OSFxwgsgr');
    // Text beyond ASCII hashes as its UTF-8 bytes.
    expect(contentHash('class', { title: 'Synthetic class é😀', schoolKey: 's1' })).toBe('VYG3r5Q7tq-mexvmxNpwgknEd-GPfMqc');
  });

  it('differs by type for the same data', () => {
    const data = { raw: { title: 'Synthetic' } };
    expect(contentHash('class', data)).not.toBe(contentHash('course', data));
    expect(contentHash('class', data)).toHaveLength(32);
  });
});
