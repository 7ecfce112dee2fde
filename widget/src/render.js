// The Markdown tree (markdown.js) -> DOM nodes. Model text is never parsed as HTML: every
// node is made with createElement/createTextNode and filled through textContent.
import { parseInline, parseMarkdown } from './markdown.js';

// ctx {sources: Map(n -> source), label(n, source), cite(n)} turns [n] into a button to
// source n; without a matching source it stays text.
export function renderMarkdown(doc, text, ctx) {
  const el = (tag, cls) => {
    const node = doc.createElement(tag);
    if (cls) node.className = cls;
    return node;
  };
  const inline = (parent, nodes) => {
    for (const n of nodes) {
      if (n.t === 'text') parent.appendChild(doc.createTextNode(n.v));
      else if (n.t === 'br') parent.appendChild(el('br'));
      else if (n.t === 'code') parent.appendChild(el('code')).textContent = n.v;
      else if (n.t === 'strong' || n.t === 'em') inline(parent.appendChild(el(n.t)), n.c);
      else if (n.t === 'link') {
        const a = el('a');
        a.setAttribute('href', n.href);
        a.setAttribute('target', '_blank');
        a.setAttribute('rel', 'noopener noreferrer');
        a.setAttribute('title', n.href);
        inline(a, n.c);
        parent.appendChild(a);
      } else if (n.t === 'cite') {
        for (const num of n.nums) {
          const source = ctx && ctx.sources && ctx.sources.get(num);
          if (!source) {
            parent.appendChild(doc.createTextNode('[' + num + ']'));
            continue;
          }
          const b = el('button', 'cite');
          b.type = 'button';
          b.textContent = '[' + num + ']';
          b.setAttribute('aria-label', ctx.label(num, source));
          b.addEventListener('click', () => ctx.cite(num));
          parent.appendChild(b);
        }
      }
    }
    return parent;
  };
  const list = (b) => {
    const node = el(b.t);
    if (b.t === 'ol' && b.start !== 1) node.setAttribute('start', b.start);
    for (const item of b.items) {
      const li = inline(node.appendChild(el('li')), parseInline(item.text));
      item.sub.forEach((s) => li.appendChild(list(s)));
    }
    return node;
  };
  const frag = doc.createDocumentFragment();
  for (const b of parseMarkdown(text)) {
    if (b.t === 'code') {
      const pre = el('pre');
      pre.appendChild(el('code')).textContent = b.text;
      frag.appendChild(pre);
    } else if (b.t === 'hr') frag.appendChild(el('hr'));
    else if (b.t === 'ul' || b.t === 'ol') frag.appendChild(list(b));
    else frag.appendChild(inline(el(b.t === 'quote' ? 'blockquote' : 'p', b.t === 'h' ? 'h' : ''), parseInline(b.text)));
  }
  return frag;
}
