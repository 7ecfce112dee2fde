// What the page (data-* attributes, script src) and the server (config limits) ask of the widget.
import assert from 'node:assert/strict';
import test from 'node:test';

import { readLimits, readOptions } from '../src/options.js';

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
  assert.equal(readOptions(script('https://c.example/widget/sitechat.js', { 'data-position': 'bottom-right' }), 'https://a.example/').position, 'bottom-right');
  assert.equal(readOptions(script('https://c.example/widget/sitechat.js', { 'data-position': 'xbottom-leftx' }), 'https://a.example/').position, '');
});

test('the limits in the config are used', () => {
  assert.deepEqual(readLimits({ limits: { max_message_chars: 4000, idle_timeout_seconds: 45 } }), { maxChars: 4000, idleMs: 45000 });
  assert.deepEqual(readLimits({ limits: { max_message_chars: 500, idle_timeout_seconds: 90 } }), { maxChars: 500, idleMs: 90000 });
  assert.deepEqual(readLimits({ limits: { idle_timeout_seconds: 2.5 } }), { maxChars: 4000, idleMs: 2500 });
  assert.deepEqual(readLimits({ limits: { max_message_chars: 200000, idle_timeout_seconds: 5400 } }), { maxChars: 200000, idleMs: 5400000 });
});

test('without limits (older servers, no config at all) the defaults are the server defaults', () => {
  const defaults = { maxChars: 4000, idleMs: 45000 };
  for (const config of [null, undefined, {}, { limits: null }, { limits: 'x' }, { limits: {} }]) {
    assert.deepEqual(readLimits(config), defaults, JSON.stringify(config));
  }
});

test('a limit that is not a sensible number keeps its default', () => {
  for (const bad of ['500', 0, -1, 0.5, 1e12, NaN, Infinity, true, [500], null]) {
    const limits = readLimits({ limits: { max_message_chars: bad, idle_timeout_seconds: bad } });
    assert.deepEqual(limits, { maxChars: 4000, idleMs: 45000 }, String(bad));
  }
});
