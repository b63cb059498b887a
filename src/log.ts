/**
 * The one logger. Structured (pino) and redacting: personal values never reach a log line.
 * Redaction works two ways — known personal keys are censored wherever they appear, and callers
 * pass keys and counts, never records, as the codebase's rule.
 */
import { pino, type Logger } from 'pino';

export const PERSONAL_KEYS = [
  'givenName', 'familyName', 'middleName', 'preferredGivenName', 'name', 'email', 'username',
  'phone', 'sms', 'photoUrl', 'birthDate', 'sisId', 'stateId', 'studentNumber', 'teacherNumber',
  'authorization', 'cookie', 'token', 'clientSecret', 'password', 'apiKey', 'x-api-key', 'secret',
];

const paths = PERSONAL_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers.${k}`]);

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.ROSTERGATE_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info');
  return pino(
    { level, redact: { paths, censor: '[redacted]' }, base: { svc: 'rostergate' } },
    (opts.destination as pino.DestinationStream | undefined) ?? pino.destination(2),
  );
}

export const log: Logger = createLogger();
export type { Logger };
