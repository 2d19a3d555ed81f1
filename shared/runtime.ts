/**
 * The Functions-side runtime: settings parsed and adapters built once per process, shared by
 * every handler in functions/. A bad setting is reported by every invocation (with every bad
 * setting named), never half-applied.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { InvocationContext } from '@azure/functions';
import { createApp, type App } from './app';
import { loadSettings } from './config';
import { createLogger, type Logger, type LogLevel } from './log';
import { isCycleRecordLine } from './cycle-record';

/** The invocation being served, per async call chain (a timer cycle and an HTTP call can overlap). */
const invocation = new AsyncLocalStorage<InvocationContext>();
let appPromise: Promise<App> | null = null;
/** Raised to LOG_LEVEL once settings are read (debug until then, so start-up problems show). */
let minLevel: LogLevel = 'debug';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * Lines go to the invocation being served (so they carry its id), else to the console. The cycle
 * record (shared/cycle-record.ts) passes whatever LOG_LEVEL says: Azure Monitor's "no successful
 * cycle" alert counts those records, so silencing them would raise a false alarm.
 */
const logger: Logger = createLogger((level, message, fields) => {
  if (ORDER[level] < ORDER[minLevel] && !isCycleRecordLine(message)) return;
  const line = fields && Object.keys(fields).length > 0 ? `${message} ${JSON.stringify(fields)}` : message;
  const ctx = invocation.getStore();
  if (ctx) {
    if (level === 'error') ctx.error(line);
    else if (level === 'warn') ctx.warn(line);
    else if (level === 'debug') ctx.debug(line);
    else ctx.info(line);
  } else {
    (level === 'error' ? console.error : level === 'warn' ? console.warn : console.log)(line);
  }
}, 'debug');

/** Runs a handler so that every log line it causes goes to its own invocation. */
export function withInvocation<T>(context: InvocationContext, handler: () => Promise<T>): Promise<T> {
  return invocation.run(context, handler);
}

export function getApp(): Promise<App> {
  if (!appPromise) {
    appPromise = (async () => {
      const settings = loadSettings({ env: process.env, localSettingsDir: null });
      minLevel = settings.logLevel;
      return createApp(settings, { logger });
    })();
    // A failed start (bad settings, storage down) is retried on the next invocation.
    appPromise.catch(() => {
      appPromise = null;
    });
  }
  return appPromise;
}

/** For tests: forget the cached app so the next invocation reads settings again. */
export function resetRuntime(): void {
  appPromise = null;
}
