// Markdown for model output: text -> a tree of plain objects. Pure: render.js turns the tree
// into DOM nodes. A small safe subset; anything else stays text.

// Only absolute http(s) URLs without credentials pass: javascript:, data:, relative paths,
// entity tricks and "https://good@evil" become plain text.
export function safeUrl(raw) {
  if (typeof raw !== 'string') return null;
  const text = raw.trim();
  if (!/^https?:\/\/[^\s]+$/i.test(text)) return null;
  let url;
  try { url = new URL(text); } catch (_) { return null; }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) return null;
  return url.href;
}

const RX = {
  code: /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/y,
  strong: /(\*\*|__)(?=\S)([\s\S]*?\S)\1/y,
  em: /([*_])(?=[^\s*_])([\s\S]*?[^\s\\])\1(?![*_])/y,
  link: /(!?)\[((?:\\.|[^[\]\\]|\[[^[\]]*\])*)\]\(\s*<?((?:[^\s()<>\\]|\\.|\([^\s()<>]*\))*)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/y,
  cite: /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/y,
  url: /https?:\/\/[^\s<>"'`[\]]+/iy,
  angle: /<(https?:\/\/[^\s<>]+)>/iy,
};

function at(re, text, i) {
  re.lastIndex = i;
  return re.exec(text);
}

const isWord = (ch) => !!ch && /[\p{L}\p{N}_]/u.test(ch);

function plainText(nodes) {
  return nodes.map((n) => (n.t === 'text' || n.t === 'code' ? n.v : n.c ? plainText(n.c) : '')).join('');
}

// A link whose text names another host than its target ("[https://bank.com](https://evil)")
// shows its real target instead.
function linkNode(href, children) {
  const named = /^(?:https?:\/\/)?((?:[\p{L}\p{N}-]+\.)+[\p{L}\p{N}-]{2,})(?:[/:?#]|$)/iu.exec(plainText(children).trim());
  if (named && named[1].toLowerCase().replace(/^www\./, '') !== new URL(href).hostname.replace(/^www\./, '')) {
    children = [{ t: 'text', v: href }];
  }
  return { t: 'link', href, c: children };
}

// Inline Markdown -> nodes: text, br, code, strong, em, link, cite. Links inside link text
// are not made (inLink), images become their alt text.
export function parseInline(src, inLink) {
  const out = [];
  let buf = '';
  const flush = () => { if (buf) out.push({ t: 'text', v: buf }); buf = ''; };
  const push = (node, len) => { flush(); out.push(node); return len; };
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    const prev = src[i - 1];
    let m;
    let used = 0;
    if (c === '\\' && /[!-/:-@[-`{-~]/.test(src[i + 1] || '')) {
      buf += src[i + 1];
      i += 2;
      continue;
    }
    if (c === '\n') used = push({ t: 'br' }, 1);
    else if (c === '`' && (m = at(RX.code, src, i))) used = push({ t: 'code', v: m[2] }, m[0].length);
    else if ((c === '*' || c === '_') && !(c === '_' && isWord(prev))) {
      if ((m = at(RX.strong, src, i)) || (m = at(RX.em, src, i))) {
        if (c !== '_' || !isWord(src[i + m[0].length])) {
          used = push({ t: m[1].length === 2 ? 'strong' : 'em', c: parseInline(m[2], inLink) }, m[0].length);
        }
      }
    } else if ((c === '[' || c === '!') && (m = at(RX.link, src, i))) {
      const children = parseInline(m[2], true);
      const href = safeUrl(m[3].replace(/\\(.)/g, '$1'));
      if (m[1]) {
        buf += plainText(children);
        used = m[0].length;
      } else if (href && !inLink) used = push(linkNode(href, children), m[0].length);
      else {
        flush();
        out.push(...children);
        used = m[0].length;
      }
    } else if (c === '[' && (m = at(RX.cite, src, i))) {
      used = push({ t: 'cite', nums: m[1].split(',').map((n) => parseInt(n, 10)) }, m[0].length);
    } else if (!inLink && c === '<' && (m = at(RX.angle, src, i)) && safeUrl(m[1])) {
      used = push({ t: 'link', href: safeUrl(m[1]), c: [{ t: 'text', v: m[1] }] }, m[0].length);
    } else if (!inLink && (c === 'h' || c === 'H') && !isWord(prev) && (m = at(RX.url, src, i))) {
      let url = m[0].replace(/[.,;:!?*_~]+$/, '');
      while (url.endsWith(')') && url.split('(').length < url.split(')').length) url = url.slice(0, -1);
      const href = safeUrl(url);
      if (href) used = push({ t: 'link', href, c: [{ t: 'text', v: url }] }, url.length);
    }
    if (used) i += used;
    else {
      buf += c;
      i += 1;
    }
  }
  flush();
  return out;
}

// Blocks: {t:'p'|'h'|'quote'|'code', text}, {t:'hr'}, {t:'ul'|'ol', start, items:[{text, sub}]}.
export function parseMarkdown(src) {
  const lines = String(src == null ? '' : src).replace(/\r\n?/g, '\n').split('\n');
  const blocks = [];
  let para = null;
  let quote = null;
  let lists = [];
  const reset = () => { para = null; quote = null; lists = []; };
  const openList = (indent, ordered, start) => {
    const node = { t: ordered ? 'ol' : 'ul', start, items: [] };
    const parent = lists[lists.length - 1];
    if (parent) parent.node.items[parent.node.items.length - 1].sub.push(node);
    else blocks.push(node);
    lists.push({ indent, node });
    return node;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if ((m = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/.exec(line))) {
      reset();
      const close = new RegExp('^ {0,3}' + (m[1][0] === '`' ? '`' : '~') + '{' + m[1].length + ',}\\s*$');
      const body = [];
      while (++i < lines.length && !close.test(lines[i])) body.push(lines[i]);
      blocks.push({ t: 'code', lang: m[2], text: body.join('\n') });
    } else if (!line.trim()) {
      reset();
    } else if ((m = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/.exec(line))) {
      reset();
      blocks.push({ t: 'h', level: m[1].length, text: m[2] });
    } else if (/^ {0,3}([-*_])(?:\s*\1){2,}\s*$/.test(line)) {
      reset();
      blocks.push({ t: 'hr' });
    } else if ((m = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(line))) {
      para = null;
      quote = null;
      const indent = m[1].replace(/\t/g, '    ').length;
      const ordered = /\d/.test(m[2]);
      while (lists.length && lists[lists.length - 1].indent > indent) lists.pop();
      const top = lists[lists.length - 1];
      let node = top && top.node;
      if (!top || indent >= top.indent + 2) node = openList(indent, ordered, parseInt(m[2], 10) || 1);
      else if ((node.t === 'ol') !== ordered) {
        lists.pop();
        node = openList(top.indent, ordered, parseInt(m[2], 10) || 1);
      }
      node.items.push({ text: m[3], sub: [] });
    } else if ((m = /^ {0,3}>\s?(.*)$/.exec(line))) {
      if (quote) quote.text += '\n' + m[1];
      else {
        reset();
        quote = { t: 'quote', text: m[1] };
        blocks.push(quote);
      }
    } else if (lists.length) {
      const items = lists[lists.length - 1].node.items;
      items[items.length - 1].text += '\n' + line.trim();
    } else if (quote) {
      quote.text += '\n' + line;
    } else if (para) {
      para.text += '\n' + line;
    } else {
      para = { t: 'p', text: line };
      blocks.push(para);
    }
  }
  return blocks;
}
