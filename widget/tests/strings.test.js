// The widget's own labels.
import assert from 'node:assert/strict';
import test from 'node:test';

import { languageOf, strings } from '../src/strings.js';

test('strings fall back to English and fill placeholders', () => {
  assert.equal(strings('fr')('stop'), 'Arrêter');
  assert.equal(strings('fr')('sources'), 'Sources');
  assert.equal(strings('xx')('rate', { s: 9 }), 'Too many messages. Please wait 9 seconds, then try again.');
});

test('a placeholder without a value is left empty', () => {
  assert.equal(strings('en')('source', { n: 2 }), 'Source 2: ');
});

test('the language of the labels is the one asked for when the widget has it, else English', () => {
  assert.equal(languageOf('de'), 'de');
  assert.equal(languageOf('es'), 'es');
  assert.equal(languageOf('xx'), 'en');
  assert.equal(languageOf(''), 'en');
});
