// The API client against a scripted fetch: paths, the visitor token, the stream's content type.
import assert from 'node:assert/strict';
import test from 'node:test';

import { HEADER_VISITOR, createClient } from '../src/api.js';

// A fetch that answers each call with the next of `answers` (Responses) and records the calls.
function scriptedFetch(...answers) {
  const calls = [];
  const fetchFn = async (url, init) => {
    calls.push({ url, init });
    const next = answers.shift();
    if (!next) throw new TypeError('Failed to fetch');
    return next;
  };
  return { calls, fetchFn };
}

const json = (body, status = 200, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: Object.assign({ 'Content-Type': 'application/json' }, headers) });

// An event stream sent in the given chunks; `cancelled` tells whether the reader gave up on it.
function eventStream(chunks, contentType = 'text/event-stream; charset=utf-8') {
  const state = { cancelled: false };
  const enc = new TextEncoder();
  const body = new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(enc.encode(c));
      controller.close();
    },
    cancel() { state.cancelled = true; },
  });
  return { response: new Response(body, { status: 200, headers: { 'Content-Type': contentType } }), state };
}

async function collect(client, ...args) {
  const events = [];
  let chunks = 0;
  await client.stream(...args, new AbortController().signal, (ev) => events.push(ev), () => { chunks += 1; });
  return { events, chunks };
}

test('the config comes from the chatbot path, without cookies; its visitor token goes with later calls', async () => {
  const { calls, fetchFn } = scriptedFetch(
    json({ name: 'Bot', visitor_token: 'tok-1' }),
    json({ messages: [] }),
    eventStream(['data: {"type":"complete"}\n\n']).response,
  );
  const client = createClient('https://chat.example/base', 'shop bot', fetchFn);
  assert.deepEqual(await client.config(), { name: 'Bot', visitor_token: 'tok-1' });
  await client.messages('session-12345');
  await collect(client, { message: 'hi', chatbot_id: 'shop bot', session_id: null });

  assert.equal(calls[0].url, 'https://chat.example/base/api/public/chatbots/shop%20bot/config');
  assert.equal(calls[0].init.credentials, 'omit');
  assert.deepEqual(calls[0].init.headers, {});
  assert.equal(calls[1].url, 'https://chat.example/base/api/public/chatbots/shop%20bot/sessions/session-12345/messages');
  assert.deepEqual(calls[1].init.headers, { [HEADER_VISITOR]: 'tok-1' });
  assert.equal(calls[2].url, 'https://chat.example/base/api/public/chat/stream');
  assert.equal(calls[2].init.method, 'POST');
  assert.equal(calls[2].init.credentials, 'omit');
  assert.deepEqual(calls[2].init.headers, { 'Content-Type': 'application/json', Accept: 'text/event-stream', [HEADER_VISITOR]: 'tok-1' });
  assert.deepEqual(JSON.parse(calls[2].init.body), { message: 'hi', chatbot_id: 'shop bot', session_id: null });
});

test('the visitor token is kept across page loads: the next config request carries it', async () => {
  const kept = { value: 'tok-old' };
  const keep = { get: () => kept.value, set: (v) => { kept.value = v; } };
  const { calls, fetchFn } = scriptedFetch(json({ visitor_token: 'tok-2' }), json({ name: 'no token' }));
  const client = createClient('https://chat.example', 'demo', fetchFn, keep);
  await client.config();
  assert.deepEqual(calls[0].init.headers, { [HEADER_VISITOR]: 'tok-old' });
  assert.equal(kept.value, 'tok-2');
  await client.config();
  assert.equal(kept.value, '');
});

test('a failed config refresh keeps the token there was; a config without one drops it', async () => {
  const { calls, fetchFn } = scriptedFetch(
    json({ visitor_token: 'tok-1' }),
    json({ error: 'busy' }, 503),
    json({ messages: [] }),
    json({ name: 'no token' }),
    json({ messages: [] }),
  );
  const client = createClient('https://chat.example', 'demo', fetchFn);
  await client.config();
  await assert.rejects(client.config(), (err) => err.status === 503);
  await client.messages('session-12345');
  assert.equal(calls[2].init.headers[HEADER_VISITOR], 'tok-1');
  await client.config();
  await client.messages('session-12345');
  assert.deepEqual(calls[4].init.headers, {});
});

test('a stream gives its chat events in order and reports every chunk read', async () => {
  const { fetchFn } = scriptedFetch(eventStream([
    'data: {"type":"start","session_id":"s1"}\n\n: ping\n\n',
    'data: {"type":"token","content":"Hel',
    'lo"}\n\ndata: not json\n\ndata: {"type":"complete","content":"Hello"}\n\n',
  ]).response);
  const { events, chunks } = await collect(createClient('https://chat.example', 'demo', fetchFn), { message: 'hi' });
  assert.deepEqual(events, [
    { type: 'start', session_id: 's1' },
    { type: 'token', content: 'Hello' },
    { type: 'complete', content: 'Hello' },
  ]);
  assert.equal(chunks, 3);
});

test('a 200 that is not an event stream is not parsed: it fails as unexpected and is cancelled', async () => {
  for (const type of ['text/html; charset=utf-8', 'application/json']) {
    const sent = eventStream(['data: {"type":"complete","content":"parsed anyway"}\n\n'], type);
    const { fetchFn } = scriptedFetch(sent.response);
    const seen = [];
    await assert.rejects(
      createClient('https://chat.example', 'demo', fetchFn).stream({ message: 'hi' }, undefined, (ev) => seen.push(ev), () => seen.push('bytes')),
      (err) => {
        assert.deepEqual(err, { status: 200, unexpected: true });
        return true;
      },
    );
    assert.deepEqual(seen, [], type);
    assert.equal(sent.state.cancelled, true, type);
  }
});

test('an HTTP error gives its status, JSON body and Retry-After; a body that is not JSON gives null', async () => {
  const { fetchFn } = scriptedFetch(
    json({ code: 'rate_limited', error: 'Slow down.', request_id: 'r1' }, 429, { 'Retry-After': '12' }),
    new Response('<h1>Bad gateway</h1>', { status: 502, headers: { 'Content-Type': 'text/html' } }),
  );
  const client = createClient('https://chat.example', 'demo', fetchFn);
  await assert.rejects(collect(client, { message: 'hi' }), (err) => {
    assert.deepEqual(err, { status: 429, body: { code: 'rate_limited', error: 'Slow down.', request_id: 'r1' }, retryAfter: '12' });
    return true;
  });
  await assert.rejects(collect(client, { message: 'hi' }), (err) => {
    assert.deepEqual(err, { status: 502, body: null, retryAfter: null });
    return true;
  });
});

test('a network failure is fetch\'s own error', async () => {
  const { fetchFn } = scriptedFetch();
  await assert.rejects(collect(createClient('https://chat.example', 'demo', fetchFn), { message: 'hi' }), TypeError);
});
