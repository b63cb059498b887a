/**
 * `personBySignIn`: from the subject of a sign-in token to the person the roster holds.
 *
 * Each provider's sign-in token names the user by the same id its roster API keys people by, and
 * the connectors already store that id as the person's source record key, so the lookup is a
 * source-record lookup in the provider's sources — no extra id is synced or stored:
 * - GOOGLE: the OIDC `sub` is the Google account id, which Classroom returns as `userId` and the
 *   google-classroom connector keys people by (connectors/google-classroom/connector.ts).
 * - MICROSOFT: the `oid` claim is the Entra object id, the Graph user `id` the msgraph connector
 *   keys people by. sds-csv people are keyed by the SIS sourcedId from the SDS files, which no
 *   Microsoft token carries, so sds-csv sources are not searched; an SDS person linked by identity
 *   resolution to an msgraph person is found through the msgraph record.
 * - CLEVER: `/me` and `/userinfo` return the Clever user `id`, the key of clever people.
 * - CLASSLINK, ONEROSTER: ClassLink's sign-in returns the user's OneRoster `SourcedId`, the key of
 *   oneroster and oneroster-csv people (OneRoster sourcedIds are trimmed on ingest, so is the subject).
 */
import { GraphQLError } from 'graphql';
import type { SourceType } from '../../connectors/types.ts';
import type { SignInProvider } from './generated.ts';
import type { GraphQLContext } from './context.ts';

export const SIGN_IN_SOURCES: Record<SignInProvider, readonly SourceType[]> = {
  GOOGLE: ['google-classroom'],
  MICROSOFT: ['msgraph'],
  CLEVER: ['clever'],
  CLASSLINK: ['oneroster', 'oneroster-csv'],
  ONEROSTER: ['oneroster', 'oneroster-csv'],
};

/**
 * The gateway id of the person `subject` signs in as, or undefined. Two different people with the
 * subject in two sources of the provider (two districts' OneRoster feeds reusing a sourcedId) is
 * an error rather than a guess: signing someone in as another person is the worst outcome here.
 */
export async function personIdBySignIn(ctx: GraphQLContext, provider: SignInProvider, subject: string): Promise<string | undefined> {
  const types = SIGN_IN_SOURCES[provider];
  if (!types) throw new GraphQLError(`personBySignIn: unknown provider ${String(provider)}`);
  const key = subject.trim();
  if (!key) return undefined;
  const sources = [...ctx.sourceTypes].filter(([, t]) => types.includes(t)).map(([id]) => id).sort();
  const found = new Map<string, string>();
  for (const source of sources) {
    const id = await ctx.store.entityOfRecord({ source, type: 'person', key });
    if (id) found.set(id, source);
  }
  if (found.size > 1) {
    // Names the sources, never the subject: it is a person's identifier.
    throw new GraphQLError(`personBySignIn: the ${provider} subject names different people in sources ${[...found.values()].join(', ')}; link them by identity resolution or keep one source per provider`, { extensions: { code: 'SIGN_IN_AMBIGUOUS' } });
  }
  return found.keys().next().value;
}
