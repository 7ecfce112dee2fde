// One message of the conversation: {node, bubble, text, typing, sources: Map(n -> source),
// extra: [nodes under the bubble], pending: paint timer, flag: its state line}. These
// functions draw it; t is strings(language).
import { h } from './dom.js';
import { safeUrl } from './markdown.js';
import { renderMarkdown } from './render.js';

// The bubble shows the text as Markdown, or the typing dots while there is none yet.
export function paint(msg, t) {
  msg.bubble.textContent = '';
  msg.bubble.hidden = !msg.text && !msg.typing;
  if (!msg.text && msg.typing) {
    msg.bubble.appendChild(h('span', { class: 'typing', role: 'img', 'aria-label': t('typing') }, [h('i'), h('i'), h('i')]));
    return;
  }
  msg.bubble.appendChild(renderMarkdown(document, msg.text, {
    sources: msg.sources,
    label: (n, s) => t('source', { n, title: s.title || '' }),
    cite: (n) => {
      const item = msg.node.querySelector('[data-n="' + n + '"]');
      if (item) { item.focus(); item.scrollIntoView({ block: 'nearest' }); }
    },
  }));
}

export function setSources(msg, sources) {
  msg.sources = new Map();
  for (const s of Array.isArray(sources) ? sources : []) {
    if (s && typeof s.number === 'number') msg.sources.set(s.number, s);
  }
}

// The numbered list under an answer; citation buttons move focus to its items.
export function showSources(msg, t) {
  if (!msg.sources.size) return;
  const list = h('ol');
  for (const [n, s] of msg.sources) {
    const href = safeUrl(s.url);
    const title = String(s.title || s.url || t('sources') + ' ' + n);
    const label = href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer', text: title }) : h('span', { text: title });
    list.appendChild(h('li', { 'data-n': n, value: n, tabindex: -1, title: typeof s.snippet === 'string' ? s.snippet.slice(0, 300) : null }, [
      label,
      s.heading ? document.createTextNode(' — ' + s.heading) : null,
    ]));
  }
  addExtra(msg, h('div', { class: 'sources' }, [h('div', { text: t('sources') }), list]));
}

export function addExtra(msg, node) {
  msg.extra.push(node);
  return msg.node.appendChild(node);
}

export function clearExtra(msg) {
  msg.extra.forEach((n) => n.remove());
  msg.extra = [];
}
