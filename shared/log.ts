/**
 * Logging. Every module logs through a `Logger` handed to it, so the composition root decides
 * where lines go (Functions' InvocationContext, the CLI's stderr, a test's memory buffer).
 *
 * Invariant: secrets never reach a log line. Values whose key looks like a secret
 * (token, secret, password, authorization, key, connection string) are replaced by
 * "[redacted]" before a line is written, and `registerSecret` lets the config module name
 * the literal secret values so they are masked wherever they appear in a message.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const SECRET_KEY = /(token|secret|password|authorization|apikey|api_key|connectionstring|accountkey|sig)$/i;
const knownSecrets = new Set<string>();

/** Masks `value` wherever it later appears in a log line, status document or error text. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 6) knownSecrets.add(value);
}

export function redactText(text: string): string {
  let out = text;
  for (const secret of knownSecrets) {
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  }
  return out.replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g, '$1[redacted]')
    .replace(/(AccountKey=|SharedAccessSignature=|accesskey=)[^;\s"]+/gi, '$1[redacted]');
}

export function redactFields(fields: LogFields | undefined): LogFields | undefined {
  if (!fields) return fields;
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    if (SECRET_KEY.test(key)) out[key] = '[redacted]';
    else if (typeof value === 'string') out[key] = redactText(value);
    else if (value instanceof Error) out[key] = redactText(value.message);
    else out[key] = value;
  }
  return out;
}

type Sink = (level: LogLevel, message: string, fields?: LogFields) => void;

/** Builds a logger over a sink; every line is redacted first. */
export function createLogger(sink: Sink, minLevel: LogLevel = 'info'): Logger {
  const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
  const emit = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (order[level] < order[minLevel]) return;
    sink(level, redactText(message), redactFields(fields));
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** One JSON object per line on stderr: what the CLI and `tvsync serve` use. */
export function jsonLinesLogger(minLevel: LogLevel = 'info', stream: NodeJS.WritableStream = process.stderr): Logger {
  return createLogger((level, message, fields) => {
    stream.write(JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }) + '\n');
  }, minLevel);
}

/** Keeps lines in memory; tests read `lines`. */
export function memoryLogger(): Logger & { lines: Array<{ level: LogLevel; message: string; fields?: LogFields }> } {
  const lines: Array<{ level: LogLevel; message: string; fields?: LogFields }> = [];
  const logger = createLogger((level, message, fields) => lines.push({ level, message, fields }), 'debug');
  return Object.assign(logger, { lines });
}

export const silentLogger: Logger = createLogger(() => undefined);
