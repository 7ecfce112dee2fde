/*! sitechat widget: one file, no dependencies. Embedding and host API: docs/widget.md.
 * Pure functions first (node's tests load them through module.exports), then the browser
 * widget. Model text is never parsed as HTML: nodes are built with createElement/textContent.
 */
(function (global) {
  'use strict';

  // --- SSE over fetch: bytes -> text -> lines -> events, one small function each.

  // push(text) -> complete lines. The tail waits for the next chunk; "\r" ending one chunk and
  // "\n" opening the next are one line break.
  function createLineSplitter() {
    let tail = '';
    let skipLF = false;
    return function push(text) {
      const lines = [];
      if (!text) return lines;
      let start = 0;
      if (skipLF && text.charCodeAt(0) === 10) start = 1;
      skipLF = false;
      for (let i = start; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c !== 10 && c !== 13) continue;
        lines.push(tail + text.slice(start, i));
        tail = '';
        if (c === 13) {
          if (i + 1 === text.length) skipLF = true;
          else if (text.charCodeAt(i + 1) === 10) i++;
        }
        start = i + 1;
      }
      tail += text.slice(start);
      return lines;
    };
  }

  // line(text) -> event | null, by the EventSource rules: a blank line dispatches, ":" opens
  // a comment (": ping"), one space after the colon is dropped.
  function createEventParser() {
    let data = [];
    let type = '';
    let lastId = '';
    return function line(text) {
      if (text === '') {
        const event = data.length ? { id: lastId, event: type || 'message', data: data.join('\n') } : null;
        data = [];
        type = '';
        return event;
      }
      if (text.charCodeAt(0) === 58) return null;
      const colon = text.indexOf(':');
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? '' : text.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') type = value;
      else if (field === 'id' && value.indexOf('\0') < 0) lastId = value;
      return null;
    };
  }

  // Bytes in, events out. TextDecoder with stream:true keeps a character split across chunks
  // whole. An event left open when the stream ends is dropped, as EventSource does.
  function createSSEParser(onEvent) {
    const decoder = new TextDecoder('utf-8');
    const split = createLineSplitter();
    const parse = createEventParser();
    function feed(text) {
      for (const text1 of split(text)) {
        const event = parse(text1);
        if (event) onEvent(event);
      }
    }
    return {
      push(bytes) { feed(decoder.decode(bytes, { stream: true })); },
      end() { feed(decoder.decode()); },
    };
  }

  // The chat API puts one JSON object with a "type" in each data field.
  function parseChatEvent(event) {
    try {
      const value = JSON.parse(event.data);
      return value && typeof value === 'object' && typeof value.type === 'string' ? value : null;
    } catch (_) {
      return null;
    }
  }

  // --- Markdown: text -> a tree of plain objects (pure) -> DOM (createElement only).

  // Only absolute http(s) URLs without credentials pass: javascript:, data:, relative paths,
  // entity tricks and "https://good@evil" become plain text.
  function safeUrl(raw) {
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
  function parseInline(src, inLink) {
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
        }
        else if (href && !inLink) used = push(linkNode(href, children), m[0].length);
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
  function parseMarkdown(src) {
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
        let top = lists[lists.length - 1];
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

  // ctx {sources: Map(n -> source), label, cite(n)} turns [n] into a button to source n.
  function renderMarkdown(doc, text, ctx) {
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
      if (b.t === 'ol' && b.start !== 1) node.setAttribute('start', String(b.start));
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

  // --- Errors, options, theme.

  // Retry-After is seconds or an HTTP date; the answer is whole seconds, at least 1.
  function parseRetryAfter(value, nowMs) {
    if (value == null || value === '') return null;
    const text = String(value).trim();
    if (/^\d+(\.\d+)?$/.test(text)) return Math.max(1, Math.ceil(parseFloat(text)));
    const when = Date.parse(text);
    return isNaN(when) ? null : Math.max(1, Math.ceil((when - nowMs) / 1000));
  }

  // Failure -> {code, kind, text?, wait?}; kind picks the message: network, rate, server, cut
  // (no final event), refused (4xx: the API's safe message is shown).
  function describeFailure(failure, nowMs) {
    const f = failure || {};
    const body = f.body && typeof f.body === 'object' ? f.body : {};
    const requestId = body.request_id || (f.event && f.event.request_id) || null;
    if (f.status === 429 || body.code === 'rate_limited' || (f.event && f.event.code === 'rate_limited')) {
      const wait = parseRetryAfter(f.retryAfter, nowMs) || parseRetryAfter(body.retry_after, nowMs) || 30;
      return { code: 'rate_limited', kind: 'rate', wait, requestId };
    }
    if (f.status >= 500) return { code: body.code || 'server_error', kind: 'server', requestId };
    if (f.status >= 400) {
      return { code: body.code || 'refused', kind: 'refused', text: typeof body.error === 'string' ? body.error : '', requestId };
    }
    if (f.event) return { code: f.event.code || 'error', kind: 'server', text: f.event.error || '', requestId };
    if (f.cut) return { code: 'cut_off', kind: 'cut', requestId };
    return { code: 'network', kind: 'network', requestId };
  }

  // The API base is the script's URL less "/widget/<file>" (path prefixes keep working).
  function readOptions(script, pageUrl) {
    const attr = (name) => (script.getAttribute('data-' + name) || '').trim();
    const src = new URL(script.getAttribute('src') || '', pageUrl);
    const derived = src.origin + src.pathname.replace(/\/widget\/[^/]*$/, '');
    return {
      chatbotId: attr('chatbot-id'),
      api: (attr('api') || derived).replace(/\/+$/, ''),
      position: attr('position') === 'bottom-left' ? 'bottom-left' : attr('position') === 'bottom-right' ? 'bottom-right' : '',
      open: attr('open') === 'true',
      language: attr('language').toLowerCase().slice(0, 2),
    };
  }

  // Text colour that stays readable on the owner's primary colour (WCAG relative luminance).
  function readableOn(hex) {
    const m = /^#([0-9a-f]{6})$/i.exec(hex || '');
    if (!m) return '#ffffff';
    const ch = (k) => {
      const v = parseInt(m[1].slice(k, k + 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    const lum = 0.2126 * ch(0) + 0.7152 * ch(2) + 0.0722 * ch(4);
    return lum > 0.45 ? '#111111' : '#ffffff';
  }

  const STRINGS = {
    en: {
      open: 'Open chat', close: 'Close chat', send: 'Send', stop: 'Stop', retry: 'Retry',
      retryIn: 'Retry in {s} s', newChat: 'New conversation', placeholder: 'Ask a question…',
      label: 'Your message', you: 'You said:', bot: 'Assistant:', sources: 'Sources',
      source: 'Source {n}: {title}', stopped: 'Stopped.', interrupted: 'This answer was interrupted.',
      greeting: 'Hi! How can I help?', starters: 'Suggested questions', typing: 'Assistant is typing',
      network: "Can't reach the chat service. Check your connection and try again.",
      rate: 'Too many messages. Please wait {s} seconds, then try again.',
      server: 'The chat service had a problem answering. Please try again.',
      cut: 'The answer was cut off. Please try again.',
    },
    fr: {
      open: 'Ouvrir le chat', close: 'Fermer le chat', send: 'Envoyer', stop: 'Arrêter', retry: 'Réessayer',
      retryIn: 'Réessayer dans {s} s', newChat: 'Nouvelle conversation', placeholder: 'Votre question…',
      label: 'Votre message', you: 'Vous :', bot: 'Assistant :', source: 'Source {n} : {title}',
      stopped: 'Arrêté.', interrupted: 'Réponse interrompue.', greeting: 'Bonjour ! Comment puis-je aider ?',
      network: 'Service injoignable. Vérifiez votre connexion.', rate: 'Trop de messages. Attendez {s} s.',
      server: 'Le service a rencontré un problème. Réessayez.', cut: 'Réponse coupée. Réessayez.',
    },
    de: {
      open: 'Chat öffnen', close: 'Chat schließen', send: 'Senden', stop: 'Stopp', retry: 'Wiederholen',
      retryIn: 'Wiederholen in {s} s', newChat: 'Neues Gespräch', placeholder: 'Ihre Frage…',
      label: 'Ihre Nachricht', you: 'Sie:', bot: 'Assistent:', sources: 'Quellen', source: 'Quelle {n}: {title}',
      stopped: 'Gestoppt.', interrupted: 'Antwort unterbrochen.', greeting: 'Hallo! Wie kann ich helfen?',
      network: 'Dienst nicht erreichbar. Prüfen Sie die Verbindung.', rate: 'Zu viele Nachrichten. Bitte {s} s warten.',
      server: 'Der Dienst hatte ein Problem. Bitte erneut versuchen.', cut: 'Antwort abgeschnitten. Bitte erneut versuchen.',
    },
    es: {
      open: 'Abrir chat', close: 'Cerrar chat', send: 'Enviar', stop: 'Detener', retry: 'Reintentar',
      retryIn: 'Reintentar en {s} s', newChat: 'Nueva conversación', placeholder: 'Tu pregunta…',
      label: 'Tu mensaje', you: 'Tú:', bot: 'Asistente:', sources: 'Fuentes', source: 'Fuente {n}: {title}',
      stopped: 'Detenido.', interrupted: 'Respuesta interrumpida.', greeting: '¡Hola! ¿En qué puedo ayudar?',
      network: 'Sin conexión con el chat. Revisa tu red.', rate: 'Demasiados mensajes. Espera {s} s.',
      server: 'El chat tuvo un problema. Inténtalo de nuevo.', cut: 'Respuesta cortada. Inténtalo de nuevo.',
    },
  };

  function strings(language) {
    const chosen = STRINGS[language] || STRINGS.en;
    return (key, vars) => String(chosen[key] || STRINGS.en[key]).replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? vars[k] : ''));
  }

  const pure = {
    createLineSplitter, createEventParser, createSSEParser, parseChatEvent, safeUrl, parseInline,
    parseMarkdown, renderMarkdown, parseRetryAfter, describeFailure, readOptions, readableOn, strings,
  };
  if (typeof module === 'object' && module && module.exports) module.exports = pure;
  if (typeof document === 'undefined' || !global.document) return;

  // --- The browser widget.

  const VERSION = '1.0.0';
  const IDLE_TIMEOUT_MS = 45000; // the API pings every 15 s; three missed pings = lost network
  const HEADER_VISITOR = 'X-Sitechat-Visitor-Token';

  const CSS = `
:host{all:initial!important;display:block!important;visibility:visible!important;opacity:1!important}
*{box-sizing:border-box}
.root{--p:#2563eb;--on-p:#fff;--bg:#fff;--fg:#1a1a1a;--mute:#5f6368;--line:#dcdfe4;--bot:#f1f3f6;--err:#b42318;--focus:#1d4ed8;
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg)}
@media (prefers-color-scheme:dark){.root{--bg:#17191c;--fg:#eceef1;--mute:#a4a9b1;--line:#3a3f46;--bot:#24282e;--err:#ff8a80;--focus:#8ab4ff}}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
button,textarea{font:inherit;color:inherit}
button{cursor:pointer;border:0;background:none}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
[hidden]{display:none!important}
.launcher,.panel{position:fixed;right:20px;z-index:2147483000}
.left .launcher,.left .panel{right:auto;left:20px}
.launcher{bottom:20px;width:56px;height:56px;border-radius:50%;box-shadow:0 4px 16px #0004}
.launcher,header,.user .bubble,.send{background:var(--p);color:var(--on-p)}
.launcher,.icon,.send,.stop{display:flex;align-items:center;justify-content:center}
svg{width:24px;height:24px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}
.panel{bottom:88px;width:min(380px,calc(100vw - 24px));height:min(620px,calc(100vh - 108px));display:flex;flex-direction:column;
background:var(--bg);border:1px solid var(--line);border-radius:14px;box-shadow:0 12px 40px #0004;overflow:hidden;animation:rise .18s ease-out}
@keyframes rise{from{opacity:0;transform:translateY(8px)}}
header{display:flex;align-items:center;gap:8px;padding:8px 8px 8px 14px}
header img{width:30px;height:30px;border-radius:50%;object-fit:cover}
h2{flex:1;margin:0;font-size:16px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.icon{width:44px;height:44px;border-radius:8px}
.icon:hover{background:#8883}
.log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px;overscroll-behavior:contain}
.msg{max-width:88%;display:flex;flex-direction:column;gap:4px}
.user{align-self:flex-end}
.bubble{padding:8px 12px;border-radius:14px;background:var(--bot);overflow-wrap:anywhere}
.user .bubble{white-space:pre-wrap}
.bubble>*{margin:0 0 8px}
.bubble>:last-child{margin:0}
ul,ol{padding-left:22px}
.h{font-weight:700}
code{font:13px ui-monospace,Menlo,monospace;background:#8883;padding:1px 4px;border-radius:4px}
pre{overflow-x:auto;padding:8px;background:#8882;border-radius:8px}
pre code{background:none;padding:0}
blockquote{border-left:3px solid var(--line);padding-left:8px}
a{color:inherit}
.cite{padding:0 1px;font-size:.8em;vertical-align:super;color:var(--focus);text-decoration:underline}
.sources,.note,.err{font-size:13px;color:var(--mute);padding:0 4px}
.sources ol{margin:2px 0 0}
.err{color:var(--err);display:flex;flex-wrap:wrap;align-items:center;gap:8px}
.err button,.starters button{border:1px solid var(--line);background:var(--bg);color:var(--fg);border-radius:16px;padding:6px 12px;min-height:36px;text-align:left}
.starters{display:flex;flex-wrap:wrap;gap:6px}
.typing i{display:inline-block;width:7px;height:7px;margin:4px 2px;border-radius:50%;background:var(--mute);animation:blink 1.2s infinite both}
.typing i:nth-child(2){animation-delay:.2s}.typing i:nth-child(3){animation-delay:.4s}
@keyframes blink{0%,80%,100%{opacity:.25}40%{opacity:1}}
form{display:flex;align-items:flex-end;gap:6px;padding:10px;border-top:1px solid var(--line);margin:0}
textarea{flex:1;min-width:0;resize:none;max-height:120px;min-height:44px;padding:10px 12px;border:1px solid var(--line);border-radius:12px;background:var(--bg);font-size:16px}
.send,.stop{min-width:44px;height:44px;border-radius:12px}
.stop{background:var(--fg);color:var(--bg)}
@media (max-width:480px),(max-height:480px){.panel{inset:0;width:100%;height:100%;border-radius:0;border:0}.open .launcher{display:none}}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}
`;

  const ICONS = {
    chat: 'M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z',
    close: 'M6 6l12 12M18 6L6 18',
    fresh: 'M4 4v6h6M20 20v-6h-6M5.5 15a7 7 0 0 0 12.3 2M18.5 9A7 7 0 0 0 6.2 7',
    send: 'M5 12h13M12 5l7 7-7 7',
    stop: 'M7 7h10v10H7z',
  };

  function findScript() {
    if (document.currentScript && document.currentScript.hasAttribute('data-chatbot-id')) return document.currentScript;
    const all = document.querySelectorAll('script[data-chatbot-id]');
    return all[all.length - 1] || null;
  }

  // localStorage can throw (private modes, blocked storage): the session then lives in memory.
  function storage() {
    const memory = {};
    return {
      get(key) { try { return global.localStorage.getItem(key); } catch (_) { return memory[key] || null; } },
      set(key, value) { try { global.localStorage.setItem(key, value); } catch (_) { memory[key] = value; } },
      remove(key) { try { global.localStorage.removeItem(key); } catch (_) { delete memory[key]; } },
    };
  }

  function createWidget(opts) {
    const t = strings(opts.language);
    const store = storage();
    const sessionKey = 'sitechat:' + opts.chatbotId + ':session';
    const listeners = {};
    const timers = new Set();
    const waiting = []; // API calls made before the config arrived
    let ready = false;
    let dead = false;
    let config = null;
    let ui = null;
    let restoring = null;
    let busy = null; // {controller, stopped} while a reply streams
    const queue = []; // questions sent while another one streams

    const emit = (name, detail) => {
      for (const fn of (listeners[name] || []).slice()) {
        try { fn(detail); } catch (err) { console.error('[sitechat] listener failed', err); }
      }
    };
    const later = (fn, ms) => {
      const id = setTimeout(() => { timers.delete(id); fn(); }, ms);
      timers.add(id);
      return id;
    };
    const cancel = (id) => { clearTimeout(id); timers.delete(id); };
    const endpoint = (path) => opts.api + '/api/public/' + path;
    const chatbotPath = 'chatbots/' + encodeURIComponent(opts.chatbotId);
    const validSession = (id) => (typeof id === 'string' && /^[\w-]{8,64}$/.test(id) ? id : null);
    let sessionId = validSession(store.get(sessionKey));

    function headers() {
      const h = {};
      if (config && typeof config.visitor_token === 'string' && config.visitor_token) h[HEADER_VISITOR] = config.visitor_token;
      return h;
    }

    async function httpError(res) {
      let body = null;
      try { body = await res.json(); } catch (_) { /* not JSON: the status says enough */ }
      return { status: res.status, body, retryAfter: res.headers.get('Retry-After') };
    }

    async function getJSON(path) {
      const res = await fetch(endpoint(path), { mode: 'cors', credentials: 'omit', headers: headers() });
      if (!res.ok) throw await httpError(res);
      return res.json();
    }

    // -- DOM ---------------------------------------------------------------------------
    function h(tag, attrs, children) {
      const node = document.createElement(tag);
      for (const key in attrs || {}) {
        const value = attrs[key];
        if (value == null || value === false) continue;
        if (key === 'text') node.textContent = value;
        else if (key === 'class') node.className = value;
        else if (typeof value === 'function') node.addEventListener(key, value);
        else node.setAttribute(key, value === true ? '' : value);
      }
      for (const child of children || []) if (child) node.appendChild(child);
      return node;
    }

    function icon(name) {
      const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
      svg.setAttribute('viewBox', '0 0 24 24');
      svg.setAttribute('aria-hidden', 'true');
      svg.setAttribute('focusable', 'false');
      const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
      path.setAttribute('d', ICONS[name]);
      svg.appendChild(path);
      return svg;
    }

    function build() {
      const theme = (config && config.theme) || {};
      const host = document.createElement('sitechat-widget');
      const shadow = host.attachShadow({ mode: 'open' });
      if (shadow.adoptedStyleSheets && global.CSSStyleSheet && 'replaceSync' in CSSStyleSheet.prototype) {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        shadow.adoptedStyleSheets = [sheet];
      } else {
        shadow.appendChild(h('style', { text: CSS }));
      }
      const position = opts.position || (theme.position === 'bottom-left' ? 'bottom-left' : 'bottom-right');
      const root = h('div', { class: 'root' + (position === 'bottom-left' ? ' left' : ''), lang: STRINGS[opts.language] ? opts.language : 'en' });
      if (/^#[0-9a-f]{6}$/i.test(theme.primary_color || '')) {
        root.style.setProperty('--p', theme.primary_color);
        root.style.setProperty('--on-p', readableOn(theme.primary_color));
      }
      const name = (config && config.name) || 'Chat';
      const avatar = safeUrl(theme.avatar_url);
      const u = {};
      u.launcher = h('button', { class: 'launcher', type: 'button', 'aria-label': t('open'), 'aria-expanded': 'false', 'aria-controls': 'sc-panel', click: () => (ui.panel.hidden ? api.open() : api.close()) }, [icon('chat')]);
      u.log = h('div', { class: 'log', role: 'log', 'aria-live': 'off', 'aria-labelledby': 'sc-title', tabindex: '0' });
      u.live = h('div', { class: 'sr', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
      u.input = h('textarea', { id: 'sc-input', rows: '1', placeholder: t('placeholder'), maxlength: '4000', autocomplete: 'off', enterkeyhint: 'send', keydown: onKey, input: grow });
      u.send = h('button', { class: 'send', type: 'submit', 'aria-label': t('send') }, [icon('send')]);
      u.stop = h('button', { class: 'stop', type: 'button', hidden: true, click: stop }, [icon('stop'), h('span', { class: 'sr', text: t('stop') })]);
      u.starters = h('div', { class: 'starters', role: 'group', 'aria-label': t('starters') });
      u.panel = h('section', { class: 'panel', id: 'sc-panel', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'sc-title', hidden: true, keydown: (e) => { if (e.key === 'Escape') { e.stopPropagation(); api.close(); } } }, [
        h('header', null, [
          avatar ? h('img', { src: avatar, alt: '', referrerpolicy: 'no-referrer' }) : null,
          h('h2', { id: 'sc-title', text: name }),
          h('button', { class: 'icon', type: 'button', 'aria-label': t('newChat'), title: t('newChat'), click: newConversation }, [icon('fresh')]),
          h('button', { class: 'icon', type: 'button', 'aria-label': t('close'), title: t('close'), click: () => api.close() }, [icon('close')]),
        ]),
        u.log,
        u.live,
        h('form', { submit: (e) => { e.preventDefault(); submit(); } }, [h('label', { class: 'sr', for: 'sc-input', text: t('label') }), u.input, u.send, u.stop]),
      ]);
      root.append(u.launcher, u.panel);
      shadow.appendChild(root);
      u.host = host;
      u.root = root;
      ui = u;
      greet();
      document.body.appendChild(host);
    }

    function greet() {
      ui.log.textContent = '';
      const bubble = h('div', { class: 'bubble' });
      bubble.appendChild(renderMarkdown(document, (config && config.greeting) || t('greeting'), null));
      ui.log.appendChild(h('div', { class: 'msg bot' }, [bubble]));
      ui.starters.textContent = '';
      const starters = (config && Array.isArray(config.starter_questions) ? config.starter_questions : []).filter((q) => typeof q === 'string' && q.trim());
      for (const q of starters.slice(0, 4)) ui.starters.appendChild(h('button', { type: 'button', text: q, click: () => api.send(q) }));
      if (starters.length) ui.log.appendChild(ui.starters);
    }

    function grow() {
      ui.input.style.height = 'auto';
      ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 120) + 'px';
    }

    function onKey(e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    }

    function submit() {
      const text = ui.input.value.trim();
      if (!text || busy) return;
      ui.input.value = '';
      grow();
      restore().then(() => send(text));
    }

    function nearBottom() {
      return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 60;
    }

    function scrollDown(force) {
      if (force || nearBottom()) ui.log.scrollTop = ui.log.scrollHeight;
    }

    // One message in the log. Assistant messages re-render their Markdown as text grows.
    function addMessage(role, text) {
      if (ui.starters.parentNode) ui.starters.remove();
      const bubble = h('div', { class: 'bubble' });
      const node = h('div', { class: 'msg ' + role }, [h('span', { class: 'sr', text: t(role === 'user' ? 'you' : 'bot') }), bubble]);
      const stick = nearBottom();
      ui.log.appendChild(node);
      const msg = { node, bubble, text: text || '', sources: new Map(), extra: [], pending: 0 };
      if (role === 'user') bubble.textContent = text;
      else paint(msg);
      scrollDown(stick);
      return msg;
    }

    function paint(msg) {
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

    // Re-render at most every 40 ms (a timer, not rAF, which stops in background tabs).
    function schedulePaint(msg) {
      if (msg.pending) return;
      msg.pending = later(() => {
        msg.pending = 0;
        const stick = nearBottom();
        paint(msg);
        scrollDown(stick);
      }, 40);
    }

    function setSources(msg, sources) {
      msg.sources = new Map();
      for (const s of Array.isArray(sources) ? sources : []) {
        if (s && typeof s.number === 'number') msg.sources.set(s.number, s);
      }
    }

    function showSources(msg) {
      if (!msg.sources.size) return;
      const list = h('ol');
      for (const [n, s] of msg.sources) {
        const href = safeUrl(s.url);
        const title = String(s.title || s.url || t('sources') + ' ' + n);
        const label = href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer', text: title }) : h('span', { text: title });
        list.appendChild(h('li', { 'data-n': String(n), value: String(n), tabindex: '-1', title: typeof s.snippet === 'string' ? s.snippet.slice(0, 300) : null }, [
          label,
          s.heading ? document.createTextNode(' — ' + s.heading) : null,
        ]));
      }
      addExtra(msg, h('div', { class: 'sources' }, [h('div', { text: t('sources') }), list]));
    }

    function addExtra(msg, node) {
      msg.extra.push(node);
      msg.node.appendChild(node);
    }

    function clearExtra(msg) {
      msg.extra.forEach((n) => n.remove());
      msg.extra = [];
    }

    function announce(text) {
      // Cleared first so that the same text twice is still announced.
      ui.live.textContent = '';
      later(() => { ui.live.textContent = text; }, 50);
    }

    function setBusy(state) {
      // Send and stop swap places; focus on the one that hides moves to the input, not body.
      const focused = ui.host.shadowRoot.activeElement;
      busy = state;
      ui.stop.hidden = !state;
      ui.send.hidden = !!state;
      ui.log.setAttribute('aria-busy', state ? 'true' : 'false');
      if (focused && (focused === ui.stop || focused === ui.send) && focused.hidden) ui.input.focus();
    }

    // -- chatting ------------------------------------------------------------------------
    function send(text) {
      if (busy) { queue.push(text); return; }
      addMessage('user', text);
      emit('message', { role: 'user', content: text, session_id: sessionId });
      ask(text, addMessage('bot', ''));
    }

    async function ask(text, msg, isRetry) {
      const state = { controller: new AbortController(), stopped: false };
      setBusy(state);
      msg.text = '';
      msg.typing = true;
      clearExtra(msg);
      paint(msg);
      let terminal = null;
      let idle = 0;
      const watch = () => {
        cancel(idle);
        idle = later(() => state.controller.abort(), IDLE_TIMEOUT_MS);
      };
      const onEvent = (ev) => {
        if (terminal) return;
        if (ev.type === 'start') remember(ev.session_id);
        else if (ev.type === 'sources') setSources(msg, ev.sources);
        else if (ev.type === 'token' && typeof ev.content === 'string') {
          msg.text += ev.content;
          msg.typing = false;
          schedulePaint(msg);
        } else if (ev.type === 'complete' || ev.type === 'error') terminal = ev;
      };
      try {
        watch();
        await stream(text, state.controller.signal, onEvent, watch);
        if (!terminal) throw { cut: true };
        if (terminal.type === 'error') throw { event: terminal };
        finish(msg, terminal);
      } catch (err) {
        if (state.stopped) stopped(msg);
        else if (err && err.status === 401 && !isRetry && config && config.visitor_token) {
          // The visitor token expired: fetch a fresh one with the config, then ask again once.
          try { config = await getJSON(chatbotPath + '/config'); } catch (_) { /* fall through */ }
          cancel(idle);
          setBusy(null);
          return ask(text, msg, true);
        } else fail(msg, err && typeof err === 'object' && !(err instanceof Error) ? err : {}, text);
      } finally {
        cancel(idle);
        if (busy === state) setBusy(null);
      }
      if (!busy && queue.length) send(queue.shift());
    }

    async function stream(text, signal, onEvent, onBytes) {
      const res = await fetch(endpoint('chat/stream'), {
        method: 'POST',
        mode: 'cors',
        credentials: 'omit',
        headers: Object.assign({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }, headers()),
        body: JSON.stringify({ message: text, chatbot_id: opts.chatbotId, session_id: sessionId }),
        signal,
      });
      if (!res.ok) throw await httpError(res);
      const parser = createSSEParser((event) => {
        const ev = parseChatEvent(event);
        if (ev) onEvent(ev);
      });
      const reader = res.body.getReader();
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        onBytes();
        parser.push(chunk.value);
      }
      parser.end();
    }

    function remember(id) {
      const valid = validSession(id);
      if (valid && valid !== sessionId) {
        sessionId = valid;
        store.set(sessionKey, valid);
      }
    }

    function finish(msg, ev) {
      cancel(msg.pending);
      msg.pending = 0;
      msg.typing = false;
      if (typeof ev.content === 'string') msg.text = ev.content;
      if (Array.isArray(ev.sources)) setSources(msg, ev.sources);
      remember(ev.session_id);
      paint(msg);
      showSources(msg);
      scrollDown(false);
      announce(t('bot') + ' ' + msg.bubble.textContent);
      emit('message', {
        role: 'assistant', content: msg.text, sources: Array.from(msg.sources.values()),
        message_id: ev.message_id || null, session_id: sessionId, fallback: !!ev.fallback,
      });
    }

    function stopped(msg) {
      cancel(msg.pending);
      msg.pending = 0;
      msg.typing = false;
      paint(msg);
      addExtra(msg, h('div', { class: 'note', text: t('stopped') }));
      if (msg.node.isConnected) announce(t('stopped'));
    }

    function fail(msg, failure, text) {
      cancel(msg.pending);
      msg.pending = 0;
      msg.typing = false;
      paint(msg);
      const info = describeFailure(failure, Date.now());
      const message = info.kind === 'rate' ? t('rate', { s: info.wait }) : info.kind === 'refused' ? info.text || t('server') : t(info.kind);
      const retry = h('button', { type: 'button', text: t('retry'), click: () => { cancel(tick); ask(text, msg); ui.input.focus(); } });
      let tick = 0;
      if (info.kind === 'rate') {
        // Counting down shows the wait and keeps the retry from being refused again.
        let left = info.wait;
        retry.disabled = true;
        const step = () => {
          if (left <= 0) { retry.disabled = false; retry.textContent = t('retry'); return; }
          retry.textContent = t('retryIn', { s: left });
          left -= 1;
          tick = later(step, 1000);
        };
        step();
      }
      addExtra(msg, h('div', { class: 'err', role: 'alert' }, [h('span', { text: message }), retry]));
      scrollDown(true);
      emit('error', { code: info.code, message, retry_after: info.wait || null, request_id: info.requestId, status: failure.status || null });
    }

    function stop() {
      if (!busy) return;
      busy.stopped = true;
      busy.controller.abort();
      ui.input.focus();
    }

    function newConversation() {
      stop();
      queue.length = 0;
      sessionId = null;
      store.remove(sessionKey);
      restoring = Promise.resolve();
      greet();
      ui.input.focus();
      announce(t('newChat'));
    }

    // The stored session's messages come back from the server; an unknown session is forgotten.
    function restore() {
      if (restoring) return restoring;
      if (!sessionId) return (restoring = Promise.resolve());
      const id = sessionId;
      restoring = getJSON(chatbotPath + '/sessions/' + encodeURIComponent(id) + '/messages').then((data) => {
        if (id !== sessionId) return;
        for (const m of (data && Array.isArray(data.messages) ? data.messages : [])) {
          if (!m || typeof m.content !== 'string') continue;
          if (m.role === 'user') addMessage('user', m.content);
          else if (m.role === 'assistant') {
            const msg = addMessage('bot', m.content);
            setSources(msg, m.sources);
            paint(msg);
            showSources(msg);
            if (m.status && m.status !== 'complete') addExtra(msg, h('div', { class: 'note', text: t('interrupted') }));
          }
        }
        scrollDown(true);
      }, (err) => {
        if (err && (err.status === 404 || err.status === 422) && id === sessionId) {
          sessionId = null;
          store.remove(sessionKey);
        }
      });
      return restoring;
    }

    // -- the host API ----------------------------------------------------------------------
    function whenReady(fn) {
      return function () {
        const args = arguments;
        if (dead) return;
        if (ready) fn.apply(null, args);
        else waiting.push(() => fn.apply(null, args));
      };
    }

    function openPanel(focus) {
      const wasOpen = !ui.panel.hidden;
      ui.panel.hidden = false;
      ui.root.classList.add('open');
      ui.launcher.setAttribute('aria-expanded', 'true');
      ui.launcher.setAttribute('aria-label', t('close'));
      if (focus !== false) ui.input.focus();
      if (!wasOpen) emit('open', {});
      return restore().then(() => scrollDown(true));
    }

    const api = {
      version: VERSION,
      open: whenReady(() => { openPanel(true); }),
      close: whenReady(() => {
        if (ui.panel.hidden) return;
        const hadFocus = ui.panel.contains(ui.host.shadowRoot.activeElement);
        ui.panel.hidden = true;
        ui.root.classList.remove('open');
        ui.launcher.setAttribute('aria-expanded', 'false');
        ui.launcher.setAttribute('aria-label', t('open'));
        if (hadFocus) ui.launcher.focus();
        emit('close', {});
      }),
      send: whenReady((text) => {
        const clean = String(text == null ? '' : text).trim().slice(0, 4000);
        if (clean) openPanel(false).then(() => send(clean));
      }),
      on(name, fn) {
        if (typeof fn !== 'function') return () => {};
        (listeners[name] = listeners[name] || []).push(fn);
        return () => { listeners[name] = (listeners[name] || []).filter((f) => f !== fn); };
      },
      destroy() {
        dead = true;
        if (busy) busy.controller.abort();
        timers.forEach((id) => clearTimeout(id));
        timers.clear();
        if (ui) ui.host.remove();
        for (const k in listeners) delete listeners[k];
        if (global.SitechatWidget === api) delete global.SitechatWidget;
      },
    };
    // Code that keeps pushing onto the stub's queue after load still works.
    api.q = { push: (call) => replay(call) };
    function replay(call) {
      if (!call || typeof api[call[0]] !== 'function' || call[0] === 'destroy') return;
      api[call[0]].apply(api, Array.prototype.slice.call(call[1] || []));
    }

    async function start() {
      if (!opts.chatbotId) throw new Error('data-chatbot-id is missing');
      try {
        config = await getJSON(chatbotPath + '/config');
      } catch (err) {
        // An unknown chatbot shows nothing; anything else still shows the widget with defaults.
        if (err && err.status === 404) {
          emit('error', { code: 'chatbot_not_found', message: 'Unknown chatbot', status: 404 });
          dead = true;
          return;
        }
        config = null;
      }
      if (dead) return;
      build();
      ready = true;
      if (opts.open) openPanel(false);
      waiting.splice(0).forEach((fn) => fn());
    }

    return { api, start, replay };
  }

  function boot() {
    const existing = global.SitechatWidget;
    if (existing && existing.version) return; // loaded twice: the first one stays
    const script = findScript();
    if (!script) return;
    let widget;
    try {
      widget = createWidget(readOptions(script, global.location.href));
    } catch (err) {
      console.error('[sitechat]', err);
      return;
    }
    const pending = existing && Array.isArray(existing.q) ? existing.q.slice() : [];
    // A reference to the stub kept by the host now reaches the real widget too.
    if (existing && typeof existing === 'object') Object.assign(existing, widget.api);
    global.SitechatWidget = widget.api;
    pending.forEach(widget.replay);
    const go = () => widget.start().catch((err) => console.error('[sitechat]', err));
    if (document.body) go();
    else document.addEventListener('DOMContentLoaded', go, { once: true });
  }

  boot();
})(typeof window !== 'undefined' ? window : globalThis);
