/**
 * An error as the cycle records it: a code a caller can act on and a message without secrets.
 * Anything without a string `code` is INTERNAL.
 */
import { redactText } from '../log';

export interface ErrorInfo {
  code: string;
  message: string;
}

export function errorInfo(err: unknown): ErrorInfo {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'INTERNAL';
  const message = redactText(err instanceof Error ? err.message : String(err));
  return { code, message };
}
