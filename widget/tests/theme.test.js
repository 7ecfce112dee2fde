// The colour computed from the owner's theme.
import assert from 'node:assert/strict';
import test from 'node:test';

import { readableOn } from '../src/theme.js';

test('text on the primary colour is dark on light colours and white on dark ones', () => {
  assert.equal(readableOn('#ffeb3b'), '#111111');
  assert.equal(readableOn('#1e3a8a'), '#ffffff');
  assert.equal(readableOn('red'), '#ffffff');
});
