// The public chat API over fetch: the chatbot's config (which carries the visitor token),
// a session's messages, an answer's stream (asked, or resumed after a drop), and stop.
// Requests carry no cookies. fetch is passed in so node's tests can answer with their own
// Responses.
import { createSSEParser, isEventStream, parseChatEvent } from './sse.js';

export const HEADER_VISITOR = 'X-Sitechat-Visitor-Token';

// A non-2xx response -> {status, body, retryAfter}, what describeFailure reads. JSON error
// bodies carry the API's code, safe message and request id.
async function httpError(res) {
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON: the status says enough */ }
  return { status: res.status, body, retryAfter: res.headers.get('Retry-After') };
}

// `keep` ({get, set}) keeps the visitor token across page loads: sent with the next config
// request, even expired, it keeps the visitor's id, and on a chatbot that requires tokens a
// session can only be read back by the visitor it belongs to.
export function createClient(base, chatbotId, fetchFn = (url, init) => fetch(url, init), keep = null) {
  const chatbotPath = base + '/api/public/chatbots/' + encodeURIComponent(chatbotId);
  const sessionPath = (sid) => chatbotPath + '/sessions/' + encodeURIComponent(sid);
  const messagePath = (sid, mid) => sessionPath(sid) + '/messages/' + encodeURIComponent(mid);
  let token = (keep && keep.get()) || '';

  // The response, or the HTTP error thrown.
  async function call(url, init, headers) {
    const res = await fetchFn(url, Object.assign({
      mode: 'cors', credentials: 'omit', headers: Object.assign({}, headers, token ? { [HEADER_VISITOR]: token } : null),
    }, init));
    if (!res.ok) throw await httpError(res);
    return res;
  }
  const getJSON = (url) => call(url).then((res) => res.json());

  // Calls onEvent(chat event, its SSE id) for each event of the stream and onBytes() for
  // each chunk read (pings included: the caller's idle timer). Throws the HTTP error,
  // {status, unexpected} for a success that is not an event stream, or fetch's own error.
  async function events(url, init, onEvent, onBytes, headers) {
    const res = await call(url, init, Object.assign({ Accept: 'text/event-stream' }, headers));
    if (!isEventStream(res.headers.get('Content-Type'))) {
      if (res.body) res.body.cancel().catch(() => {});
      throw { status: res.status, unexpected: true };
    }
    const parser = createSSEParser((event) => {
      const ev = parseChatEvent(event);
      if (ev) onEvent(ev, event.id);
    });
    const reader = res.body.getReader();
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      onBytes();
      parser.push(chunk.value);
    }
    parser.end();
  }

  return {
    // The config; its visitor token (if any) goes with every later request. A failed fetch
    // keeps the token there was.
    async config() {
      const config = await getJSON(chatbotPath + '/config');
      token = config && typeof config.visitor_token === 'string' ? config.visitor_token : '';
      if (keep) keep.set(token);
      return config;
    },

    messages: (sid) => getJSON(sessionPath(sid) + '/messages'),

    // POSTs a question; its answer's events as events() gives them.
    stream: (body, signal, onEvent, onBytes) => events(base + '/api/public/chat/stream', {
      method: 'POST', body: JSON.stringify(body), signal,
    }, onEvent, onBytes, { 'Content-Type': 'application/json' }),

    // The frames of an answer after frame `after`, then live to its end.
    resume: (sid, mid, after, signal, onEvent, onBytes) =>
      events(messagePath(sid, mid) + '/stream?after=' + after, { signal }, onEvent, onBytes),

    // Asks the server to stop generating the answer (idempotent).
    stop: (sid, mid) => call(messagePath(sid, mid) + '/stop', { method: 'POST' }),
  };
}
