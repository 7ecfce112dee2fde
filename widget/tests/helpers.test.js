// Errors, options from the script tag, theme colour and UI strings.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { parseRetryAfter, describeFailure, readOptions, readableOn, strings } = require('../sitechat.js');

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

function script(src, attrs) {
  const all = Object.assign({ src }, attrs);
  return { getAttribute: (name) => (name in all ? all[name] : null) };
}

test('the API base comes from the script src, path prefix included', () => {
  const page = 'https://shop.example/page';
  assert.equal(readOptions(script('https://chat.example/widget/sitechat.js', { 'data-chatbot-id': 'demo' }), page).api, 'https://chat.example');
  assert.equal(readOptions(script('https://host.example/sitechat/widget/sitechat.js?v=2', {}), page).api, 'https://host.example/sitechat');
  assert.equal(readOptions(script('/widget/sitechat.js', {}), page).api, 'https://shop.example');
});

test('data attributes set chatbot, position, open, language and an API override', () => {
  const opts = readOptions(script('https://cdn.example/x.js', {
    'data-chatbot-id': ' bot1 ', 'data-position': 'bottom-left', 'data-open': 'true', 'data-language': 'FR-ca', 'data-api': 'https://api.example/',
  }), 'https://a.example/');
  assert.deepEqual(opts, { chatbotId: 'bot1', api: 'https://api.example', position: 'bottom-left', open: true, language: 'fr' });
  assert.equal(readOptions(script('https://c.example/widget/sitechat.js', { 'data-position': 'top' }), 'https://a.example/').position, '');
});

test('text on the primary colour is dark on light colours and white on dark ones', () => {
  assert.equal(readableOn('#ffeb3b'), '#111111');
  assert.equal(readableOn('#1e3a8a'), '#ffffff');
  assert.equal(readableOn('red'), '#ffffff');
});

test('strings fall back to English and fill placeholders', () => {
  assert.equal(strings('fr')('stop'), 'Arrêter');
  assert.equal(strings('fr')('sources'), 'Sources');
  assert.equal(strings('xx')('rate', { s: 9 }), 'Too many messages. Please wait 9 seconds, then try again.');
});
