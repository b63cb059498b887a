/**
 * The one logger. Structured (pino) and redacting: personal values never reach a log line.
 * Redaction works two ways — known personal keys are censored wherever they appear, and callers
 * pass keys and counts, never records, as the codebase's rule.
 */
import { pino, type Logger } from 'pino';
import { RostergateError } from './errors.ts';
import { currentRequest } from './kernel/request-context.ts';
import { activeTraceId } from './kernel/tracing.ts';

export const PERSONAL_KEYS = [
  'givenName', 'familyName', 'middleName', 'preferredGivenName', 'name', 'email', 'username',
  'phone', 'sms', 'photoUrl', 'birthDate', 'sisId', 'stateId', 'studentNumber', 'teacherNumber',
  'authorization', 'cookie', 'token', 'clientSecret', 'password', 'apiKey', 'x-api-key', 'secret',
];

const paths = PERSONAL_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers.${k}`]);

/**
 * Standard error for log lines — unless a progress display holds the terminal: a line written
 * under its bars would be torn by the next redraw, so while one is shown, lines go through it
 * (it prints them above its bars). Loggers given their own destination are not affected.
 */
let stderr: pino.DestinationStream | undefined;
let diverted: ((line: string) => void) | undefined;
const logDestination: pino.DestinationStream = {
  write: (line: string) => {
    if (diverted) diverted(line);
    else (stderr ??= pino.destination(2)).write(line);
  },
};

/** Sends log lines to `write` until the returned function is called (src/sync/progress.ts). */
export function divertLogLines(write: (line: string) => void): () => void {
  diverted = write;
  return () => {
    if (diverted === write) diverted = undefined;
  };
}

/**
 * Fields every line gets from where it is written: the id of the request being served (so all of
 * a request's lines can be found by it, src/kernel/request-context.ts) and the trace it belongs to
 * when tracing is on. Read from AsyncLocalStorage, so no caller has to pass a child logger down.
 */
function lineContext(): Record<string, string> {
  const reqId = currentRequest()?.id;
  const traceId = activeTraceId();
  return reqId ? (traceId ? { reqId, traceId } : { reqId }) : traceId ? { traceId } : {};
}

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.ROSTERGATE_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info');
  return pino(
    { level, redact: { paths, censor: '[redacted]' }, base: { svc: 'rostergate' }, mixin: lineContext },
    (opts.destination as pino.DestinationStream | undefined) ?? logDestination,
  );
}

export const log: Logger = createLogger();

/**
 * What a log line may say about an error. Messages are not logged: graphql's own ("String cannot
 * represent value: \"Zoë\""), a driver's or JSON.parse's quote the data they failed on, and ours
 * name records by source key. The kind, a stable code and where it was thrown are enough to find it.
 */
export function errorForLog(e: unknown): Record<string, unknown> {
  if (e instanceof RostergateError) {
    const { source, resource, status } = e.context;
    return { err: e.code, source, resource, status };
  }
  if (!(e instanceof Error)) return { err: typeof e };
  const code = (e as { code?: unknown }).code;
  const at = e.stack?.split('\n').find((l) => l.trimStart().startsWith('at '))?.trim().slice(3);
  return { err: e.name, ...(typeof code === 'string' ? { code } : {}), ...(at ? { at } : {}) };
}
export type { Logger };
