/**
 * GET /api/status: the status document as JSON, or the status page for a browser. Registered by
 * functions/status.ts, hosted locally by `tvsync serve`.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { getApp, withInvocation } from '../runtime';
import type { StatusDocument } from '../status';
import { renderStatusPage } from '../status-page';
import { describeError } from './respond';

/**
 * The page runs no script and loads nothing: inline styles and data: images only, so an escaping
 * slip elsewhere still cannot run code or call out.
 */
const STATUS_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/** Reload often while a cycle runs (the progress bar moves), rarely otherwise. */
const REFRESH_RUNNING_SECONDS = 10;
const REFRESH_IDLE_SECONDS = 60;

/**
 * GET /api/status: the status document as JSON, or as the status page for a browser (an Accept
 * header that prefers text/html over JSON). `?format=json|html` overrides the header.
 */
export function statusHandler(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return withInvocation(context, () => status(request, context));
}

async function status(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const format = responseFormat(request);
  if (format === null) {
    return {
      status: 400,
      jsonBody: { error: { code: 'FORMAT_INVALID', message: 'format must be json or html' } },
      headers: { 'cache-control': 'no-store', vary: 'accept' },
    };
  }
  let doc: Partial<StatusDocument>;
  let code = 200;
  try {
    const tvsync = await getApp();
    doc = await tvsync.status();
  } catch (err) {
    const { code: errorCode, message } = describeError(err);
    context.error(`status failed: ${message}`);
    if (format === 'json') {
      return { status: 503, jsonBody: { health: 'disabled', error: { code: errorCode, message } }, headers: { 'cache-control': 'no-store', vary: 'accept' } };
    }
    code = 503;
    doc = disabledDocument(errorCode, message);
  }
  if (format === 'json') return { status: code, jsonBody: doc, headers: { 'cache-control': 'no-store', vary: 'accept' } };
  return {
    status: code,
    body: renderStatusPage(doc, { refreshSeconds: doc.currentCycle ? REFRESH_RUNNING_SECONDS : REFRESH_IDLE_SECONDS }),
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': STATUS_PAGE_CSP,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      vary: 'accept',
    },
  };
}

/** What the page can say when tvsync cannot start: only that, and why. */
function disabledDocument(code: string, message: string): Partial<StatusDocument> {
  return { health: 'disabled', healthReason: `${message} (${code})`, generatedAt: new Date().toISOString() };
}

/** 'json' | 'html', or null for a `format` we do not serve. JSON wins a tie (curl's *\/*). */
function responseFormat(request: HttpRequest): 'json' | 'html' | null {
  const explicit = request.query.get('format');
  if (explicit !== null) {
    const f = explicit.trim().toLowerCase();
    return f === 'json' || f === 'html' ? f : null;
  }
  const accept = request.headers.get('accept');
  if (!accept) return 'json';
  return quality(accept, 'text', 'html') > quality(accept, 'application', 'json') ? 'html' : 'json';
}

/** The q-value the Accept header gives a media type: its most specific matching range wins (RFC 9110 §12.5.1). */
function quality(accept: string, type: string, subtype: string): number {
  let best = -1;
  let q = 0;
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const [t, s] = range.split('/');
    const specificity = t === type && s === subtype ? 2 : t === type && s === '*' ? 1 : t === '*' && s === '*' ? 0 : -1;
    if (specificity <= best) continue;
    const qParam = params.find((p) => p.startsWith('q='));
    const value = qParam ? Number(qParam.slice(2)) : 1;
    best = specificity;
    q = Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
  }
  return q;
}
