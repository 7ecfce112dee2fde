// An answer followed across drops of the network (answer.js) through the real API client
// (api.js) against a scripted fetch: resume from the last frame, backoff, stop.
import assert from 'node:assert/strict';
import test from 'node:test';

import { backoff, followAnswer } from '../src/answer.js';
import { HEADER_VISITOR, createClient } from '../src/api.js';

const BASE = 'https://chat.example';
const MESSAGE_URL = BASE + '/api/public/chatbots/demo/sessions/s-123456789/messages/m1';
const enc = new TextEncoder();

// The frames of one answer: start, sources, the tokens, complete; frame n has SSE id n.
function answerFrames(tokens, complete = {}) {
  const events = [
    { type: 'start', message_id: 'm1', session_id: 's-123456789' },
    { type: 'sources', sources: [{ number: 1, title: 'Shipping' }] },
    ...tokens.map((content) => ({ type: 'token', content })),
    Object.assign({ type: 'complete', content: tokens.join(''), done: true }, complete),
  ];
  return events.map((event, i) => 'id: ' + (i + 1) + '\ndata: ' + JSON.stringify(event) + '\n\n');
}

// One streamed response: sends `frames`, then ends as `end` says: 'close' (the stream ends),
// 'drop' (the network fails) or 'hang' (silence until the request is aborted).
function sse(frames, end = 'close') {
  return (signal) => {
    const left = frames.slice();
    return new Response(new ReadableStream({
      start(controller) {
        signal.addEventListener('abort', () => controller.error(new DOMException('aborted', 'AbortError')));
      },
      // One frame a read, so that every frame is read before the stream ends or fails.
      pull(controller) {
        if (left.length) controller.enqueue(enc.encode(left.shift()));
        else if (end === 'close') controller.close();
        else if (end === 'drop') controller.error(new TypeError('network error'));
        else return new Promise(() => {}); // silence
      },
    }), { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  };
}

const json = (body, status = 200) => () => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
const offline = () => { throw new TypeError('Failed to fetch'); };

// A fetch that answers each call with the next answer (a function of the call's signal) and
// records the calls; `waiting` holds a call until its promise is resolved.
function scriptedFetch(...answers) {
  const calls = [];
  const fetchFn = async (url, init) => {
    calls.push({ url, init });
    const next = answers.shift();
    if (!next) throw new Error('no more answers scripted');
    return next(init.signal);
  };
  return { calls, fetchFn };
}

// followAnswer with the events and reconnecting states recorded; no backoff wait by default.
function follow(fetchFn, options = {}) {
  const seen = { events: [], states: [], delays: [] };
  const client = createClient(BASE, 'demo', fetchFn, { get: () => 'tok-1', set() {} });
  const answer = followAnswer(client, Object.assign({
    body: { message: 'When do orders ship?', chatbot_id: 'demo', session_id: null },
    idleMs: 5000,
    onEvent: (ev) => seen.events.push(ev),
    onState: (down) => seen.states.push(down),
    refresh: async () => { seen.refreshed = true; },
    delay: (n) => { seen.delays.push(n); return 1; },
  }, options));
  return { answer, seen, text: () => seen.events.filter((e) => e.type === 'token').map((e) => e.content).join('') };
}

const TOKENS = ['Orders ', 'ship ', 'within ', 'two ', 'days.'];

test('a drop mid-answer resumes after the last frame shown: every token once, in order', async () => {
  const frames = answerFrames(TOKENS);
  const { calls, fetchFn } = scriptedFetch(
    sse(frames.slice(0, 4), 'drop'), // start, sources, "Orders ", "ship "
    offline, // the first reconnect finds no network
    sse(frames.slice(4)),
  );
  const { answer, seen, text } = follow(fetchFn);
  const final = await answer.done;
  assert.equal(final.type, 'complete');
  assert.equal(text(), TOKENS.join(''));
  assert.equal(text(), final.content);
  assert.deepEqual(seen.states, [true, false]);
  assert.deepEqual(seen.delays, [0, 1]);
  assert.equal(calls[0].init.method, 'POST');
  for (const call of calls.slice(1)) {
    assert.equal(call.url, MESSAGE_URL + '/stream?after=4');
    assert.equal(call.init.method, undefined);
    assert.equal(call.init.credentials, 'omit');
    assert.deepEqual(call.init.headers, { Accept: 'text/event-stream', [HEADER_VISITOR]: 'tok-1' });
  }
});

test('frames sent again are not shown again', async () => {
  const frames = answerFrames(TOKENS);
  const { fetchFn } = scriptedFetch(sse(frames.slice(0, 5), 'drop'), sse(frames.slice(2)));
  const { answer, text } = follow(fetchFn);
  await answer.done;
  assert.equal(text(), TOKENS.join(''));
});

test('a stream cut before its final event, or a 502, is resumed too', async () => {
  const frames = answerFrames(TOKENS);
  const { calls, fetchFn } = scriptedFetch(
    sse(frames.slice(0, 3)), // ends cleanly, without complete
    json({ error: 'bad gateway' }, 502),
    sse(frames.slice(3)),
  );
  const { answer, text } = follow(fetchFn);
  assert.equal((await answer.done).type, 'complete');
  assert.equal(text(), TOKENS.join(''));
  assert.equal(calls.length, 3);
  assert.match(calls[2].url, /\/stream\?after=3$/);
});

test('a silent stream (no frame, no ping) is given up after the idle timeout and resumed', async () => {
  const frames = answerFrames(TOKENS);
  const { calls, fetchFn } = scriptedFetch(sse(frames.slice(0, 3), 'hang'), sse(frames.slice(3)));
  const { answer, text } = follow(fetchFn, { idleMs: 50 });
  await answer.done;
  assert.equal(text(), TOKENS.join(''));
  assert.match(calls[1].url, /after=3$/);
});

test('reconnecting gives up after ten tries in a row', async () => {
  const frames = answerFrames(TOKENS);
  const { calls, fetchFn } = scriptedFetch(sse(frames.slice(0, 3), 'drop'), ...Array(11).fill(offline));
  const { answer, seen } = follow(fetchFn);
  await assert.rejects(answer.done, (err) => err.resume === true);
  assert.deepEqual(seen.delays, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(calls.length, 11);
});

test('a refused resume (4xx) gives up at once; a 401 first fetches a new visitor token', async () => {
  const frames = answerFrames(TOKENS);
  let { fetchFn } = scriptedFetch(sse(frames.slice(0, 3), 'drop'), json({ code: 'not_found' }, 404));
  let run = follow(fetchFn);
  await assert.rejects(run.answer.done, (err) => err.resume === true);
  assert.deepEqual(run.seen.delays, [0]);

  ({ fetchFn } = scriptedFetch(sse(frames.slice(0, 3), 'drop'), json({ code: 'invalid_token' }, 401), sse(frames.slice(3))));
  run = follow(fetchFn);
  assert.equal((await run.answer.done).type, 'complete');
  assert.equal(run.seen.refreshed, true);
  assert.equal(run.text(), TOKENS.join(''));
});

test('a drop before the start event cannot be resumed: the failure is the network\'s', async () => {
  const { calls, fetchFn } = scriptedFetch(sse([], 'drop'));
  const { answer } = follow(fetchFn);
  await assert.rejects(answer.done, TypeError);
  assert.equal(calls.length, 1);
});

test('an answer whose process died ends with its error event after the partial text', async () => {
  const frames = answerFrames(TOKENS).slice(0, 4);
  frames.push('id: 5\ndata: ' + JSON.stringify({ type: 'error', code: 'answer_orphaned', error: 'Lost.', done: true }) + '\n\n');
  const { fetchFn } = scriptedFetch(sse(frames.slice(0, 3), 'drop'), sse(frames.slice(3)));
  const { answer, text } = follow(fetchFn);
  assert.deepEqual(await answer.done, { type: 'error', code: 'answer_orphaned', error: 'Lost.', done: true });
  assert.equal(text(), 'Orders ship ');
});

test('wake() (the browser is back online) reconnects without waiting out the backoff', async () => {
  const frames = answerFrames(TOKENS);
  const { fetchFn } = scriptedFetch(sse(frames.slice(0, 3), 'drop'), sse(frames.slice(3)));
  const { answer, seen, text } = follow(fetchFn, { delay: () => 60e3 });
  while (!seen.states.length) await new Promise((r) => setTimeout(r, 1));
  const woken = Date.now();
  answer.wake();
  await answer.done;
  assert.ok(Date.now() - woken < 1000);
  assert.equal(text(), TOKENS.join(''));
});

test('a restored answer is followed from its first frame', async () => {
  const { calls, fetchFn } = scriptedFetch(sse(answerFrames(TOKENS)));
  const { answer, seen, text } = follow(fetchFn, { sid: 's-123456789', mid: 'm1' });
  assert.equal((await answer.done).content, TOKENS.join(''));
  assert.equal(calls[0].url, MESSAGE_URL + '/stream?after=0');
  assert.equal(seen.events[0].type, 'start');
  assert.equal(text(), TOKENS.join(''));
});

test('stop asks the server to stop, and the stream ends with the stopped complete event', async () => {
  const frames = answerFrames(TOKENS);
  let endStream;
  const stream = (signal) => new Response(new ReadableStream({
    start(controller) {
      for (const f of frames.slice(0, 4)) controller.enqueue(enc.encode(f));
      endStream = () => {
        controller.enqueue(enc.encode('id: 5\ndata: ' + JSON.stringify({ type: 'complete', content: 'Orders ship ', stopped: true, done: true }) + '\n\n'));
        controller.close();
      };
      signal.addEventListener('abort', () => controller.error(new DOMException('aborted', 'AbortError')));
    },
  }), { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  const stopped = () => { setTimeout(endStream, 10); return json({ message_id: 'm1', status: 'stopping' })(); };
  const { calls, fetchFn } = scriptedFetch(stream, stopped);
  const { answer, seen } = follow(fetchFn);
  while (seen.events.length < 4) await new Promise((r) => setTimeout(r, 1));
  answer.stop();
  answer.stop(); // twice: asked once
  const final = await answer.done;
  assert.deepEqual(final, { type: 'complete', content: 'Orders ship ', stopped: true, done: true });
  assert.equal(calls.length, 2);
  assert.equal(calls[1].url, MESSAGE_URL + '/stop');
  assert.equal(calls[1].init.method, 'POST');
  assert.deepEqual(calls[1].init.headers, { [HEADER_VISITOR]: 'tok-1' });
});

test('stop before the start event waits for the message id; a stop the server cannot take closes the stream', async () => {
  const frames = answerFrames(TOKENS);
  let sendRest;
  const stream = (signal) => new Response(new ReadableStream({
    start(controller) {
      sendRest = () => controller.enqueue(enc.encode(frames[0]));
      signal.addEventListener('abort', () => controller.error(new DOMException('aborted', 'AbortError')));
    },
  }), { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  const { calls, fetchFn } = scriptedFetch(stream, offline);
  const { answer } = follow(fetchFn);
  await new Promise((r) => setTimeout(r, 5));
  answer.stop();
  assert.equal(calls.length, 1);
  sendRest();
  // The stop POST fails (offline): the stream is closed at once, with no final event.
  assert.equal(await answer.done, null);
  assert.equal(calls[1].url, MESSAGE_URL + '/stop');
});

test('close() ends a stream being followed, even while it waits to reconnect', async () => {
  const frames = answerFrames(TOKENS);
  const { fetchFn } = scriptedFetch(sse(frames.slice(0, 3), 'drop'));
  const { answer, seen } = follow(fetchFn, { delay: () => 60e3 });
  while (!seen.states.length) await new Promise((r) => setTimeout(r, 1));
  answer.close();
  assert.equal(await answer.done, null);
});

test('the backoff doubles from half a second to eight, give or take a quarter', () => {
  assert.equal(backoff(0, 0.5), 500);
  assert.equal(backoff(1, 0.5), 1000);
  assert.equal(backoff(3, 0.5), 4000);
  assert.equal(backoff(4, 0.5), 8000);
  assert.equal(backoff(9, 0.5), 8000);
  assert.equal(backoff(0, 0), 375);
  assert.equal(backoff(4, 1), 10000);
});

test('a question a restarting worker refused (503 server_restarting) is asked again; other refusals are not', async () => {
  const restarting = { error: 'This server is restarting; ask again.', code: 'server_restarting' };
  const { calls, fetchFn } = scriptedFetch(json(restarting, 503), json(restarting, 503), sse(answerFrames(TOKENS)));
  const { answer, text, seen } = follow(fetchFn);
  assert.equal((await answer.done).type, 'complete');
  assert.equal(text(), TOKENS.join(''));
  assert.equal(calls.length, 3);
  assert.ok(calls.every((c) => c.url === BASE + '/api/public/chat/stream' && c.init.method === 'POST'));
  assert.deepEqual(seen.states, [true, false]); // shown as reconnecting meanwhile

  const other = scriptedFetch(json({ error: 'Busy.', code: 'overloaded' }, 503));
  await assert.rejects(follow(other.fetchFn).answer.done, (err) => err.status === 503 && err.body.code === 'overloaded');
  assert.equal(other.calls.length, 1);
});
