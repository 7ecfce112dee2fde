// A failed answer -> what the visitor is told: Retry-After, the failure kinds, the message.
import assert from 'node:assert/strict';
import test from 'node:test';

import { describeFailure, failureText, parseRetryAfter } from '../src/errors.js';
import { strings } from '../src/strings.js';

test('Retry-After in seconds rounds up to whole seconds', () => {
  assert.equal(parseRetryAfter('30', 0), 30);
  assert.equal(parseRetryAfter('0.2', 0), 1);
  assert.equal(parseRetryAfter(' 7 ', 0), 7);
});

test('Retry-After as an HTTP date counts from now', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:42 GMT', now), 42);
});

test('a missing or unreadable Retry-After gives null', () => {
  assert.equal(parseRetryAfter(null, 0), null);
  assert.equal(parseRetryAfter('', 0), null);
  assert.equal(parseRetryAfter('soon', 0), null);
});

test('a 429 tells the wait from the header, then the body, then a default', () => {
  assert.deepEqual(describeFailure({ status: 429, retryAfter: '12', body: { request_id: 'r1' } }, 0), {
    code: 'rate_limited', kind: 'rate', wait: 12, requestId: 'r1',
  });
  assert.equal(describeFailure({ status: 429, body: { retry_after: 5 } }, 0).wait, 5);
  assert.equal(describeFailure({ status: 429 }, 0).wait, 30);
});

test('server errors get the generic message; 4xx keep the API safe message', () => {
  assert.equal(describeFailure({ status: 503, body: { code: 'storage_error', error: 'x' } }, 0).kind, 'server');
  assert.deepEqual(describeFailure({ status: 422, body: { code: 'invalid_input', error: 'Message is too long.' } }, 0), {
    code: 'invalid_input', kind: 'refused', text: 'Message is too long.', requestId: null,
  });
});

test('an error event, a cut stream and a network failure are told apart', () => {
  assert.deepEqual(describeFailure({ event: { code: 'model_error', error: 'The model failed.', request_id: 'q' } }, 0), {
    code: 'model_error', kind: 'server', text: 'The model failed.', requestId: 'q',
  });
  assert.equal(describeFailure({ cut: true }, 0).kind, 'cut');
  assert.equal(describeFailure({}, 0).kind, 'network');
  assert.equal(describeFailure(undefined, 0).kind, 'network');
});

test('a success that is not an event stream is a server problem, not a network one', () => {
  assert.deepEqual(describeFailure({ status: 200, unexpected: true }, 0), {
    code: 'unexpected_response', kind: 'server', requestId: null,
  });
});

test('the message names the wait, keeps the API safe message, else says what kind of failure', () => {
  const t = strings('en');
  assert.equal(failureText({ kind: 'rate', wait: 7 }, t), 'Too many messages. Please wait 7 seconds, then try again.');
  assert.equal(failureText({ kind: 'refused', text: 'Message is too long.' }, t), 'Message is too long.');
  assert.equal(failureText({ kind: 'refused', text: '' }, t), t('server'));
  assert.equal(failureText({ kind: 'cut' }, t), 'The answer was cut off. Please try again.');
  assert.equal(failureText({ kind: 'network' }, strings('de')), 'Dienst nicht erreichbar. Prüfen Sie die Verbindung.');
});

test('an answer that could not be resumed, or whose process died, is told as interrupted', () => {
  const t = strings('en');
  assert.deepEqual(describeFailure({ resume: true }, 0), { code: 'resume_failed', kind: 'interrupted', requestId: null });
  const orphaned = describeFailure({ event: { code: 'answer_orphaned', error: 'Lost.', request_id: 'q' } }, 0);
  assert.deepEqual(orphaned, { code: 'answer_orphaned', kind: 'interrupted', requestId: 'q' });
  assert.equal(failureText(orphaned, t), 'This answer was interrupted.');
  assert.equal(failureText(orphaned, strings('fr')), 'Réponse interrompue.');
});
