// A failed answer -> what the visitor is told. Pure.

// Retry-After is seconds or an HTTP date; the answer is whole seconds, at least 1.
export function parseRetryAfter(value, nowMs) {
  if (value == null || value === '') return null;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.max(1, Math.ceil(parseFloat(text)));
  const when = Date.parse(text);
  return isNaN(when) ? null : Math.max(1, Math.ceil((when - nowMs) / 1000));
}

// Failure -> {code, kind, text?, wait?}; kind picks the message: network, rate, server, cut
// (no final event), interrupted (an answer cut off that could not be picked up again:
// reconnecting gave up, or the process writing it died; the server keeps it as interrupted),
// refused (4xx: the API's safe message is shown). A failure is one of {status, body,
// retryAfter} (an HTTP error), {status, unexpected} (a success that is not an event stream),
// {event} (an error event), {cut: true}, {resume: true}, or anything else (the network).
export function describeFailure(failure, nowMs) {
  const f = failure || {};
  const ev = f.event || {};
  const body = f.body && typeof f.body === 'object' ? f.body : {};
  const info = (code, kind, more) => Object.assign({ code, kind, requestId: body.request_id || ev.request_id || null }, more);
  if (f.status === 429 || body.code === 'rate_limited' || ev.code === 'rate_limited') {
    const wait = parseRetryAfter(f.retryAfter, nowMs) || parseRetryAfter(body.retry_after, nowMs) || 30;
    return info('rate_limited', 'rate', { wait });
  }
  if (f.status >= 500) return info(body.code || 'server_error', 'server');
  if (f.status >= 400) return info(body.code || 'refused', 'refused', { text: typeof body.error === 'string' ? body.error : '' });
  if (f.resume || ev.code === 'answer_orphaned') return info(f.resume ? 'resume_failed' : ev.code, 'interrupted');
  if (f.unexpected) return info('unexpected_response', 'server');
  if (f.event) return info(ev.code || 'error', 'server', { text: ev.error || '' });
  return f.cut ? info('cut_off', 'cut') : info('network', 'network');
}

// The message shown for describeFailure's answer; t is strings(language).
export function failureText(info, t) {
  if (info.kind === 'rate') return t('rate', { s: info.wait });
  if (info.kind === 'refused') return info.text || t('server');
  return t(info.kind);
}
