/** Network helpers shared by every adapter: the one place that decides what counts as loopback. */
import net from 'node:net';

/** True for localhost, 127.0.0.0/8 and ::1: the only hosts plain http may reach. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/** Throws unless `url` is https, or http to a loopback host. Returns the parsed URL. */
export function requireSecureUrl(url: string, what: string): URL {
  const parsed = new URL(url);
  if (parsed.protocol === 'https:') return parsed;
  if (parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname)) return parsed;
  throw new InsecureUrlError(`${what} must use https (plain http is allowed only to loopback hosts): ${parsed.origin}`);
}

export class InsecureUrlError extends Error {
  readonly code = 'INSECURE_URL';
  constructor(message: string) {
    super(message);
    this.name = 'InsecureUrlError';
  }
}
