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
// (no final event), refused (4xx: the API's safe message is shown). A failure is one of
// {status, body, retryAfter} (an HTTP error), {status, unexpected} (a success that is not an
// event stream), {event} (an error event), {cut: true}, or anything else (the network).
export function describeFailure(failure, nowMs) {
  const f = failure || {};
  const body = f.body && typeof f.body === 'object' ? f.body : {};
  const requestId = body.request_id || (f.event && f.event.request_id) || null;
  if (f.status === 429 || body.code === 'rate_limited' || (f.event && f.event.code === 'rate_limited')) {
    const wait = parseRetryAfter(f.retryAfter, nowMs) || parseRetryAfter(body.retry_after, nowMs) || 30;
    return { code: 'rate_limited', kind: 'rate', wait, requestId };
  }
  if (f.status >= 500) return { code: body.code || 'server_error', kind: 'server', requestId };
  if (f.status >= 400) {
    return { code: body.code || 'refused', kind: 'refused', text: typeof body.error === 'string' ? body.error : '', requestId };
  }
  if (f.unexpected) return { code: 'unexpected_response', kind: 'server', requestId };
  if (f.event) return { code: f.event.code || 'error', kind: 'server', text: f.event.error || '', requestId };
  if (f.cut) return { code: 'cut_off', kind: 'cut', requestId };
  return { code: 'network', kind: 'network', requestId };
}

// The message shown for describeFailure's answer; t is strings(language).
export function failureText(info, t) {
  if (info.kind === 'rate') return t('rate', { s: info.wait });
  if (info.kind === 'refused') return info.text || t('server');
  return t(info.kind);
}
