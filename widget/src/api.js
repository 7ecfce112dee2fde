// The public chat API over fetch: the chatbot's config (which carries the visitor token),
// a session's messages, and the answer stream. Requests carry no cookies. fetch is passed
// in so node's tests can answer with their own Responses.
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
  let token = (keep && keep.get()) || '';
  const headers = (extra) => Object.assign({}, extra, token ? { [HEADER_VISITOR]: token } : null);

  async function getJSON(url) {
    const res = await fetchFn(url, { mode: 'cors', credentials: 'omit', headers: headers() });
    if (!res.ok) throw await httpError(res);
    return res.json();
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

    messages(sessionId) {
      return getJSON(chatbotPath + '/sessions/' + encodeURIComponent(sessionId) + '/messages');
    },

    // POSTs a question and calls onEvent(chat event) for each event of the answer, onBytes()
    // for each chunk read (pings included: the caller's idle timer). Throws the HTTP error,
    // {status, unexpected} for a success that is not an event stream, or fetch's own error.
    async stream(body, signal, onEvent, onBytes) {
      const res = await fetchFn(base + '/api/public/chat/stream', {
        method: 'POST',
        mode: 'cors',
        credentials: 'omit',
        headers: headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
        body: JSON.stringify(body),
        signal,
      });
      if (!res.ok) throw await httpError(res);
      if (!isEventStream(res.headers.get('Content-Type'))) {
        if (res.body) res.body.cancel().catch(() => {});
        throw { status: res.status, unexpected: true };
      }
      const parser = createSSEParser((event) => {
        const ev = parseChatEvent(event);
        if (ev) onEvent(ev);
      });
      const reader = res.body.getReader();
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        onBytes();
        parser.push(chunk.value);
      }
      parser.end();
    },
  };
}
