// The buffered SSE parser: bytes -> text -> lines -> events, fed the way networks split data.
import assert from 'node:assert/strict';
import test from 'node:test';

import { createEventParser, createLineSplitter, createSSEParser, isEventStream, parseChatEvent } from '../src/sse.js';

const enc = new TextEncoder();

function parseChunks(chunks) {
  const events = [];
  const parser = createSSEParser((e) => events.push(e));
  for (const c of chunks) parser.push(typeof c === 'string' ? enc.encode(c) : c);
  parser.end();
  return events;
}

// Every way of cutting `bytes` in two (and in three at a second point) gives the same events.
function everySplit(bytes) {
  const out = [];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.slice(0, i), bytes.slice(i)]);
  for (let i = 1; i < bytes.length; i += 3) {
    for (let j = i; j < bytes.length; j += 5) out.push([bytes.slice(0, i), bytes.slice(i, j), bytes.slice(j)]);
  }
  return out;
}

const STREAM =
  'id: 1\ndata: {"type":"start","message_id":"m1","session_id":"s1"}\n\n' +
  ': ping\n\n' +
  'id: 2\ndata: {"type":"token","content":"Grüße, 世界 🙂","done":false}\n\n' +
  'id: 3\r\ndata: {"type":"token","content":" é","done":false}\r\n\r\n' +
  'id: 4\rdata: {"type":"complete","content":"Grüße, 世界 🙂 é","done":true}\r\r';

const EXPECTED = [
  { type: 'start', message_id: 'm1', session_id: 's1' },
  { type: 'token', content: 'Grüße, 世界 🙂', done: false },
  { type: 'token', content: ' é', done: false },
  { type: 'complete', content: 'Grüße, 世界 🙂 é', done: true },
];

test('one chunk with several frames gives every event in order', () => {
  const events = parseChunks([STREAM]);
  assert.deepEqual(events.map(parseChatEvent), EXPECTED);
  assert.deepEqual(events.map((e) => e.id), ['1', '2', '3', '4']);
});

test('frames and multi-byte characters split at any byte give the same events', () => {
  const bytes = enc.encode(STREAM);
  for (const chunks of everySplit(bytes)) {
    assert.deepEqual(parseChunks(chunks).map(parseChatEvent), EXPECTED, 'split at ' + chunks.map((c) => c.length));
  }
});

test('one byte per chunk gives the same events', () => {
  const bytes = enc.encode(STREAM);
  const chunks = Array.from(bytes, (b) => Uint8Array.of(b));
  assert.deepEqual(parseChunks(chunks).map(parseChatEvent), EXPECTED);
});

test('a four-byte emoji split inside its bytes is decoded whole', () => {
  const bytes = enc.encode('data: 🙂\n\n');
  const at = bytes.indexOf(0xf0);
  const events = parseChunks([bytes.slice(0, at + 1), bytes.slice(at + 1, at + 3), bytes.slice(at + 3)]);
  assert.equal(events[0].data, '🙂');
});

test('comment lines alone dispatch nothing', () => {
  assert.deepEqual(parseChunks([': ping\n\n: ping\n\n']), []);
});

test('a comment between data lines does not break the event', () => {
  const events = parseChunks(['data: a\n: ping\ndata: b\n\n']);
  assert.equal(events.length, 1);
  assert.equal(events[0].data, 'a\nb');
});

test('an event not closed by a blank line when the stream ends is dropped', () => {
  assert.deepEqual(parseChunks(['data: {"type":"token"}\n']).length, 0);
});

test('only one space after the colon is removed and a colon-less field has an empty value', () => {
  const parse = createEventParser();
  assert.equal(parse('data:  two spaces'), null);
  assert.equal(parse('data'), null);
  assert.deepEqual(parse(''), { id: '', event: 'message', data: ' two spaces\n' });
});

test('event type and last id carry over as EventSource defines', () => {
  const parse = createEventParser();
  parse('id: 7');
  parse('event: custom');
  parse('data: x');
  assert.deepEqual(parse(''), { id: '7', event: 'custom', data: 'x' });
  parse('data: y');
  assert.deepEqual(parse(''), { id: '7', event: 'message', data: 'y' });
});

test('the line splitter joins CR and LF that arrive in different chunks', () => {
  const push = createLineSplitter();
  assert.deepEqual(push('a\r'), ['a']);
  assert.deepEqual(push('\nb\r'), ['b']);
  assert.deepEqual(push(''), []);
  assert.deepEqual(push('\n'), []);
  assert.deepEqual(push('c\n\n'), ['c', '']);
});

test('the line splitter keeps an unfinished line for the next chunk', () => {
  const push = createLineSplitter();
  assert.deepEqual(push('da'), []);
  assert.deepEqual(push('ta: x'), []);
  assert.deepEqual(push('\n'), ['data: x']);
});

test('a data field that is not a JSON object with a type is ignored', () => {
  assert.equal(parseChatEvent({ data: 'not json' }), null);
  assert.equal(parseChatEvent({ data: '[1,2]' }), null);
  assert.equal(parseChatEvent({ data: '{"content":"x"}' }), null);
  assert.deepEqual(parseChatEvent({ data: '{"type":"token","content":"x"}' }), { type: 'token', content: 'x' });
});

test('only text/event-stream, with or without parameters, is read as a stream', () => {
  assert.equal(isEventStream('text/event-stream'), true);
  assert.equal(isEventStream('text/event-stream; charset=utf-8'), true);
  assert.equal(isEventStream('Text/Event-Stream;charset=UTF-8'), true);
  for (const other of ['text/html; charset=utf-8', 'application/json', 'text/event-streamx', 'text/plain', '', null]) {
    assert.equal(isEventStream(other), false, String(other));
  }
});
