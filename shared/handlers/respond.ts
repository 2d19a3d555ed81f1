/**
 * What every HTTP handler answers with: JSON that is never cached, and errors as
 * `{ error: { code, message } }` with the message redacted (no secret ever leaves in an error).
 */
import type { HttpResponseInit } from '@azure/functions';
import { SettingsError } from '../config';
import { redactText } from '../log';

export function json(status: number, jsonBody: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody, headers: { 'cache-control': 'no-store', ...headers } };
}

/** A request the caller must fix (400). */
export function badRequest(message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code: 'BAD_REQUEST' });
}

export interface DescribedError {
  code: string;
  message: string;
  /** Settings are wrong: the app cannot start (503 rather than 500). */
  settings: boolean;
}

/** The code and a secret-free sentence of anything a handler caught. */
export function describeError(err: unknown): DescribedError {
  const settings = err instanceof SettingsError;
  const code = settings ? err.code : ((err as { code?: unknown })?.code as string | undefined) ?? 'INTERNAL';
  const message = redactText(err instanceof Error ? err.message : String(err));
  return { code: String(code), message, settings };
}
