/**
 * `rostergate schema --client ID`: the SDL of that client's purpose schema — exactly what its
 * introspection shows, descriptions and classification notes included — for client-side codegen.
 */
import { randomBytes } from 'node:crypto';
import { printSchema } from 'graphql';
import { RostergateError } from '../errors.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { KeyRing } from '../privacy/pseudonym.ts';
import { setupPrivacy } from '../graphql/privacy.ts';
import { demoReportConfig } from '../demo/demo.ts';
import { loadConfig } from '../config/config.ts';

export async function schemaCommand(opts: { client: string; config?: string; demo?: boolean }): Promise<void> {
  if (opts.demo && opts.config) throw new RostergateError('CONFIG_INVALID', 'pass either --demo or --config, not both');
  const cfg = opts.demo ? demoReportConfig() : loadConfig(opts.config, 'schema', '--demo for the demo\'s clients');
  const client = cfg.clients.find((c) => c.id === opts.client);
  if (!client) {
    const known = cfg.clients.map((c) => c.id).join(', ') || 'none';
    throw new RostergateError('CONFIG_INVALID', `no client "${opts.client}" in ${opts.demo ? 'the demo' : cfg.file} (clients: ${known})`);
  }
  // Printing a schema reads no keys: a throwaway key ring spares it the master key.
  const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: new KeyRing(randomBytes(32), cfg.privacy.tenant) });
  const purpose = privacy.schemas.get(client.purpose);
  if (!purpose) throw new RostergateError('CONFIG_INVALID', `client "${client.id}" names purpose "${client.purpose}", which the config does not define`);
  process.stdout.write(printSchema(purpose.schema) + '\n');
}
