import { describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { checkEndpoint, isNonPublicAddress, newWebhookSecret, sign } from '../../src/feeds/webhooks.ts';

describe('webhook endpoint policy', () => {
  const strict = { allowHttp: false, allowPrivateNetworks: false };
  it('accepts only https on public addresses by default', async () => {
    await expect(checkEndpoint('http://203.0.113.7/hook', strict)).rejects.toThrow(/must use https/);
    for (const u of ['https://127.0.0.1/h', 'https://10.1.2.3/h', 'https://192.168.0.9/h', 'https://172.20.0.1/h', 'https://[::1]/h', 'https://169.254.169.254/latest', 'https://[fd00::1]/h', 'https://100.64.0.1/h']) {
      await expect(checkEndpoint(u, strict), u).rejects.toThrow(/loopback or private address/);
    }
    await expect(checkEndpoint('https://user:pw@203.0.113.7/h', strict)).rejects.toThrow(/credentials/);
    await expect(checkEndpoint('https://203.0.113.7/hook', strict)).resolves.toBeInstanceOf(URL);
  });

  it('allows loopback and http only when the config says so', async () => {
    await expect(checkEndpoint('http://127.0.0.1:9/h', { allowHttp: true, allowPrivateNetworks: true })).resolves.toBeInstanceOf(URL);
    expect(isNonPublicAddress('8.8.8.8')).toBe(false);
    expect(isNonPublicAddress('::ffff:10.0.0.1')).toBe(true);
  });
});

describe('Standard Webhooks signature', () => {
  it('is v1, base64 HMAC-SHA256 of "id.timestamp.body" keyed by the decoded whsec_ secret', () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const sig = sign(secret, 'msg_1', 1700000000, '{"a":1}');
    const expected = createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update('msg_1.1700000000.{"a":1}').digest('base64');
    expect(sig).toBe(`v1,${expected}`);
  });
});
