/**
 * Secret files (src/secret.ts): owner-only anywhere; readable by others only inside a secret mount
 * (Docker's /run/secrets, Kubernetes' symlinked layout, folders named in ROSTERGATE_SECRET_DIRS);
 * never writable by others. The mounts are made here as the orchestrators lay them out, in
 * temporary folders named by ROSTERGATE_SECRET_DIRS (the real /run/secrets needs root to create).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertSecretFile, resolveSecret, secretMountDirs, SECRET_DIRS_ENV } from '../../src/secret.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { loadConfigFile } from '../../src/config/config.ts';
import { tempDir } from '../support/stores.ts';
import { message } from '../support/refusals.ts';

afterEach(() => {
  delete process.env[SECRET_DIRS_ENV];
});

/** A folder as Docker Compose mounts secrets: the files with their host modes, 0444 in swarm. */
function dockerMount(files: Record<string, [string, number]>): string {
  const dir = tempDir('rg-run-secrets-');
  chmodSync(dir, 0o755);
  for (const [name, [text, mode]] of Object.entries(files)) {
    writeFileSync(join(dir, name), text);
    chmodSync(join(dir, name), mode);
  }
  return dir;
}

/**
 * A Kubernetes secret volume (the kubelet's atomic writer): the mount's root is 1777 and holds a
 * timestamped folder with the files (0644 by default), `..data` linking to it, and one link per key.
 */
function kubernetesMount(key: string, text: string, fileMode = 0o644): string {
  const root = tempDir('rg-k8s-secret-');
  chmodSync(root, 0o1777);
  const stamp = join(root, '..2026_12_04_17_42_36.123456789');
  mkdirSync(stamp, { mode: 0o755 });
  writeFileSync(join(stamp, key), text);
  chmodSync(join(stamp, key), fileMode);
  symlinkSync('..2026_12_04_17_42_36.123456789', join(root, '..data'));
  symlinkSync(`..data/${key}`, join(root, key));
  return root;
}

describe('secret files', () => {
  it('accept a file only its owner can read, anywhere', () => {
    const dir = tempDir();
    for (const mode of [0o600, 0o400]) {
      const f = join(dir, `s${mode.toString(8)}`);
      writeFileSync(f, 'tok\n');
      chmodSync(f, mode);
      expect(resolveSecret(`file:${f}`, {})).toBe('tok');
    }
  });

  it('refuse a file others can read outside a secret mount, saying both ways out', () => {
    const f = join(tempDir(), 'token');
    writeFileSync(f, 'tok');
    chmodSync(f, 0o644);
    const m = message(() => assertSecretFile(f, {}));
    expect(m).toContain(`secret file ${f} is readable by group or others (mode 644); chmod 600 it`);
    expect(m).toContain(`mount it under /run/secrets or /var/run/secrets or name its folder in ${SECRET_DIRS_ENV}`);
  });

  it('accept a Docker secret readable by others (0444, 0644) in a secret mount folder', () => {
    const dir = dockerMount({ clever_token: ['tok-1\n', 0o444], db_password: ['pw', 0o644] });
    const env = { [SECRET_DIRS_ENV]: dir };
    expect(resolveSecret(`file:${join(dir, 'clever_token')}`, env)).toBe('tok-1');
    expect(resolveSecret(`file:${join(dir, 'db_password')}`, env)).toBe('pw');
    // The same folder not named: the usual rule.
    expect(() => resolveSecret(`file:${join(dir, 'db_password')}`, {})).toThrow(/readable by group or others/);
  });

  it('follow Kubernetes\' links to the file, through a sticky 1777 mount root', () => {
    const root = kubernetesMount('token', 'k8s-token\n');
    expect(resolveSecret(`file:${join(root, 'token')}`, { [SECRET_DIRS_ENV]: `/nonexistent/secrets:${root}` })).toBe('k8s-token');
  });

  it('refuse a file group or others may write, even in a secret mount', () => {
    for (const mode of [0o666, 0o646, 0o664, 0o620]) {
      const dir = dockerMount({ token: ['tok', mode] });
      const m = message(() => assertSecretFile(join(dir, 'token'), { [SECRET_DIRS_ENV]: dir }));
      expect(m).toMatch(new RegExp(`is writable by group or others \\(mode ${mode.toString(8)}\\).*chmod go-w`));
    }
    const root = kubernetesMount('token', 'tok', 0o666);
    expect(message(() => assertSecretFile(join(root, 'token'), { [SECRET_DIRS_ENV]: root }))).toMatch(/writable by group or others \(mode 666\)/);
  });

  it('refuse a secret in a folder of the mount that others may write without the sticky bit', () => {
    const dir = dockerMount({});
    mkdirSync(join(dir, 'shared'));
    chmodSync(join(dir, 'shared'), 0o777);
    writeFileSync(join(dir, 'shared', 'token'), 'tok');
    chmodSync(join(dir, 'shared', 'token'), 0o644);
    expect(message(() => assertSecretFile(join(dir, 'shared', 'token'), { [SECRET_DIRS_ENV]: dir }))).toBe(
      `secret file ${join(dir, 'shared', 'token')}: folder ${join(dir, 'shared')} is writable by group or others (mode 777), so the secret could be replaced; chmod go-w it`,
    );
    // The same folder with the sticky bit: others can add files but not swap this one.
    chmodSync(join(dir, 'shared'), 0o1777);
    expect(() => assertSecretFile(join(dir, 'shared', 'token'), { [SECRET_DIRS_ENV]: dir })).not.toThrow();
  });

  it('judge a link by where it leads: out of the mount is not a mounted secret, into it is', () => {
    const mount = dockerMount({ inside: ['in', 0o644] });
    const outside = join(tempDir(), 'outside');
    writeFileSync(outside, 'out');
    chmodSync(outside, 0o644);
    symlinkSync(outside, join(mount, 'link-out'));
    const env = { [SECRET_DIRS_ENV]: mount };
    expect(message(() => assertSecretFile(join(mount, 'link-out'), env))).toMatch(/readable by group or others \(mode 644\); chmod 600 it/);
    const elsewhere = join(tempDir(), 'link-in');
    symlinkSync(join(mount, 'inside'), elsewhere);
    expect(resolveSecret(`file:${elsewhere}`, env)).toBe('in');
  });

  it('refuse what is not a readable file, and relative mount folders', () => {
    const dir = tempDir();
    expect(message(() => assertSecretFile(dir, {}))).toBe(`secret file ${dir} is not a file`);
    expect(message(() => assertSecretFile(join(dir, 'missing'), {}))).toBe(`secret file ${join(dir, 'missing')} cannot be read`);
    expect(message(() => secretMountDirs({ [SECRET_DIRS_ENV]: 'secrets:/etc/rg' }))).toMatch(/ROSTERGATE_SECRET_DIRS holds a relative path \(secrets\)/);
    expect(secretMountDirs({ [SECRET_DIRS_ENV]: '/etc/rg/secrets' })).toEqual(['/run/secrets', '/var/run/secrets', '/etc/rg/secrets']);
  });

  it('the master key and a source\'s token may be mounted secrets', () => {
    const root = kubernetesMount('master.key', `${Buffer.alloc(32, 7).toString('base64url')}\n`);
    const ring = KeyRing.load({ tenant: 't', env: { [SECRET_DIRS_ENV]: root }, file: join(root, 'master.key') });
    expect(ring.pseudonym('analytics', 1, 'per_abc')).toBe(new KeyRing(Buffer.alloc(32, 7), 't').pseudonym('analytics', 1, 'per_abc'));
    expect(message(() => KeyRing.load({ tenant: 't', env: {}, file: join(root, 'master.key') }))).toMatch(/privacy\.masterKeyFile: .*readable by group or others \(mode 644\)/);

    const docker = dockerMount({ clever_token: ['tok-from-mount\n', 0o444] });
    const cfgPath = join(tempDir(), 'rostergate.yaml');
    writeFileSync(cfgPath, `sources:\n  - id: district\n    type: clever\n    token: file:${join(docker, 'clever_token')}\n`);
    expect(() => loadConfigFile(cfgPath, {})).toThrow(/sources\[0\] \(district\): token: secret file .* is readable by group or others/);
    process.env[SECRET_DIRS_ENV] = docker;
    expect(loadConfigFile(cfgPath, {}).sources[0]!.token).toBe('tok-from-mount');
  });
});
