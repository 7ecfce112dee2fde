// Markdown for model output: a small safe subset, parsed to plain objects before any DOM.
import assert from 'node:assert/strict';
import test from 'node:test';

import { parseInline, parseMarkdown, safeUrl } from '../src/markdown.js';

const text = (v) => ({ t: 'text', v });

function allNodes(nodes) {
  const out = [];
  for (const n of nodes) {
    out.push(n);
    if (n.c) out.push(...allNodes(n.c));
  }
  return out;
}

test('paragraphs, headings, rules and fenced code become blocks', () => {
  const blocks = parseMarkdown('# Title\n\nFirst line\nsecond line\n\n---\n```js\nlet a = "<b>";\n```\nafter');
  assert.deepEqual(blocks, [
    { t: 'h', level: 1, text: 'Title' },
    { t: 'p', text: 'First line\nsecond line' },
    { t: 'hr' },
    { t: 'code', lang: 'js', text: 'let a = "<b>";' },
    { t: 'p', text: 'after' },
  ]);
});

test('an unclosed fence while streaming is still a code block', () => {
  assert.deepEqual(parseMarkdown('```\npip install x'), [{ t: 'code', lang: '', text: 'pip install x' }]);
});

test('lists nest by indentation and ordered lists keep their start number', () => {
  const blocks = parseMarkdown('- a\n  - a1\n  - a2\n- b\ncontinued\n\n3. three\n4. four');
  assert.deepEqual(blocks, [
    {
      t: 'ul', start: 1, items: [
        { text: 'a', sub: [{ t: 'ul', start: 1, items: [{ text: 'a1', sub: [] }, { text: 'a2', sub: [] }] }] },
        { text: 'b\ncontinued', sub: [] },
      ],
    },
    { t: 'ol', start: 3, items: [{ text: 'three', sub: [] }, { text: 'four', sub: [] }] },
  ]);
});

test('a bullet after a numbered item at the same level starts a new list', () => {
  const blocks = parseMarkdown('1. one\n- dot');
  assert.deepEqual(blocks.map((b) => b.t), ['ol', 'ul']);
});

test('blockquotes collect their lines', () => {
  assert.deepEqual(parseMarkdown('> a\n> b'), [{ t: 'quote', text: 'a\nb' }]);
});

test('bold, italic and code spans parse; snake_case stays text', () => {
  assert.deepEqual(parseInline('**bold** *it* `x < y` my_var_name'), [
    { t: 'strong', c: [text('bold')] },
    text(' '),
    { t: 'em', c: [text('it')] },
    text(' '),
    { t: 'code', v: 'x < y' },
    text(' my_var_name'),
  ]);
});

test('an unfinished bold marker mid-stream stays literal text', () => {
  assert.deepEqual(parseInline('**bol'), [text('**bol')]);
});

test('backslash escapes make markup characters literal', () => {
  assert.deepEqual(parseInline('\\*not em\\* \\[1\\]'), [text('*not em* [1]')]);
});

test('newlines inside a paragraph become line breaks', () => {
  assert.deepEqual(parseInline('a\nb'), [text('a'), { t: 'br' }, text('b')]);
});

test('http and https links are kept with their target', () => {
  assert.deepEqual(parseInline('see [the docs](https://example.com/a_(b)) now'), [
    text('see '),
    { t: 'link', href: 'https://example.com/a_(b)', c: [text('the docs')] },
    text(' now'),
  ]);
  assert.deepEqual(parseInline('[x](<http://example.com/y> "title")'), [
    { t: 'link', href: 'http://example.com/y', c: [text('x')] },
  ]);
});

test('links with any other scheme or a relative target render as their text only', () => {
  const hostile = [
    '[click](javascript:alert(1))',
    '[click](JaVaScRiPt:alert(1))',
    '[click]( javascript:alert(1))',
    '[click](java\tscript:alert(1))',
    '[click](&#106;avascript:alert(1))',
    '[click](data:text/html;base64,PHNjcmlwdD4=)',
    '[click](vbscript:msgbox(1))',
    '[click](/relative/path)',
    '[click](//evil.example/x)',
    '[click](https://user:pw@evil.example/)',
    '[click](https://good.example@evil.example/)',
  ];
  for (const md of hostile) {
    const nodes = parseInline(md);
    assert.ok(!allNodes(nodes).some((n) => n.t === 'link'), md);
    assert.ok(nodes.map((n) => n.v).join('').includes('click'), md);
  }
});

test('images never become images: only their alt text remains', () => {
  assert.deepEqual(parseInline('![secret](https://evil.example/leak?d=1)'), [text('secret')]);
  assert.deepEqual(parseInline('![](https://evil.example/leak)'), []);
});

test('raw HTML stays text', () => {
  const md = '<img src=x onerror=alert(1)><script>alert(2)</script>';
  assert.deepEqual(parseInline(md), [text(md)]);
});

test('link text naming another host shows the real target instead', () => {
  assert.deepEqual(parseInline('[https://bank.example/login](https://evil.example/phish)'), [
    { t: 'link', href: 'https://evil.example/phish', c: [text('https://evil.example/phish')] },
  ]);
  assert.deepEqual(parseInline('[www.bank.example](https://bank.example/)'), [
    { t: 'link', href: 'https://bank.example/', c: [text('www.bank.example')] },
  ]);
});

test('a link inside link text is not made into a second link', () => {
  const nodes = parseInline('[a [b](https://b.example) c](https://a.example)');
  assert.equal(allNodes(nodes).filter((n) => n.t === 'link').length, 1);
});

test('bare and angle-bracket URLs link, without trailing punctuation', () => {
  assert.deepEqual(parseInline('Go to https://example.com/x. Or <https://example.org>!'), [
    text('Go to '),
    { t: 'link', href: 'https://example.com/x', c: [text('https://example.com/x')] },
    text('. Or '),
    { t: 'link', href: 'https://example.org/', c: [text('https://example.org')] },
    text('!'),
  ]);
  assert.deepEqual(parseInline('(see https://en.example/wiki/A_(b))'), [
    text('(see '),
    { t: 'link', href: 'https://en.example/wiki/A_(b)', c: [text('https://en.example/wiki/A_(b)')] },
    text(')'),
  ]);
});

test('citation markers become cite nodes', () => {
  assert.deepEqual(parseInline('Embed it [1]. Also [2, 3]'), [
    text('Embed it '),
    { t: 'cite', nums: [1] },
    text('. Also '),
    { t: 'cite', nums: [2, 3] },
  ]);
});

test('safeUrl accepts only absolute http(s) URLs without credentials', () => {
  assert.equal(safeUrl('https://example.com'), 'https://example.com/');
  assert.equal(safeUrl(' http://example.com/a?b=c#d '), 'http://example.com/a?b=c#d');
  for (const bad of ['javascript:alert(1)', 'data:,x', '/x', 'https://', 'https://a b', 'ftp://x', null, 42]) {
    assert.equal(safeUrl(bad), null, String(bad));
  }
});
