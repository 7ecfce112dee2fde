// One widget: a <sitechat-widget> element whose open shadow root holds the launcher, the
// panel and the conversation, and the conversation itself (ask, stream, stop, retry, restore
// a session). The network is api.js's, an answer's survival of it answer.js's; the host
// page's API is index.js's.
import { followAnswer } from './answer.js';
import { createClient } from './api.js';
// The labels and the stylesheet come early in the bundle: it gzips smaller (11 KB budget).
import { languageOf, strings } from './strings.js';
import CSS from './styles.css';
import { h, icon } from './dom.js';
import { describeFailure, failureText } from './errors.js';
import { safeUrl } from './markdown.js';
import { addExtra, clearExtra, paint, setSources, showSources } from './message.js';
import { readLimits } from './options.js';
import { renderMarkdown } from './render.js';
import { readableOn } from './theme.js';

// localStorage.getItem/setItem/removeItem. It can throw (private modes, blocked storage):
// the session id and visitor token then live only in this page (sessionId, the client's).
function local(method, key, value) {
  try { return window.localStorage[method](key, value); } catch (_) { return null; }
}

// emit(name, detail) tells the host page. Returns {load, build, open, close, send, destroy}:
// index.js builds once the config is loaded, and calls open/close/send only after that.
export function createWidget(opts, emit) {
  const t = strings(opts.language);
  const sessionKey = 'sitechat:' + opts.chatbotId + ':session';
  const tokenKey = 'sitechat:' + opts.chatbotId + ':visitor';
  const client = createClient(opts.api, opts.chatbotId, undefined, {
    get: () => local('getItem', tokenKey),
    set: (token) => local(token ? 'setItem' : 'removeItem', tokenKey, token),
  });
  const timers = new Set();
  let config = null;
  let ui = null; // the elements, once built
  let restoring = null;
  let busy = null; // {answer: followAnswer's, stopped} while a reply streams
  const queue = []; // questions sent while another one streams

  const later = (fn, ms) => {
    const id = setTimeout(() => { timers.delete(id); fn(); }, ms);
    timers.add(id);
    return id;
  };
  const cancel = (id) => { clearTimeout(id); timers.delete(id); };
  const limits = () => readLimits(config);
  const clip = (text) => String(text == null ? '' : text).trim().slice(0, limits().maxChars);
  const validSession = (id) => (typeof id === 'string' && /^[\w-]{8,64}$/.test(id) ? id : null);
  let sessionId = validSession(local('getItem', sessionKey));

  // -- DOM ---------------------------------------------------------------------------
  function build() {
    const theme = (config && config.theme) || {};
    const host = document.createElement('sitechat-widget');
    const shadow = host.attachShadow({ mode: 'open' });
    if (shadow.adoptedStyleSheets && window.CSSStyleSheet && 'replaceSync' in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
    } else {
      shadow.appendChild(h('style', { text: CSS }));
    }
    const left = (opts.position || theme.position) === 'bottom-left';
    const root = h('div', { class: 'root' + (left ? ' left' : ''), lang: languageOf(opts.language) });
    if (/^#[0-9a-f]{6}$/i.test(theme.primary_color || '')) {
      root.style.setProperty('--p', theme.primary_color);
      root.style.setProperty('--on-p', readableOn(theme.primary_color));
    }
    const name = (config && config.name) || 'Chat';
    const avatar = safeUrl(theme.avatar_url);
    const u = { host, shadow, root };
    const iconButton = (key, name, click) => h('button', { class: 'icon', 'aria-label': t(key), title: t(key), click }, [icon(name)]);
    u.launcher = h('button', { class: 'launcher', 'aria-label': t('open'), 'aria-expanded': 'false', 'aria-controls': 'sc-panel', click: () => (ui.panel.hidden ? open(true) : close()) }, [icon('chat')]);
    u.log = h('div', { class: 'log', role: 'log', 'aria-live': 'off', 'aria-labelledby': 'sc-title', tabindex: 0 });
    u.live = h('div', { class: 'sr', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
    u.input = h('textarea', { id: 'sc-input', rows: 1, placeholder: t('placeholder'), maxlength: limits().maxChars, autocomplete: 'off', enterkeyhint: 'send', keydown: onKey, input: grow });
    u.send = h('button', { class: 'send', type: 'submit', 'aria-label': t('send') }, [icon('send')]);
    u.stop = h('button', { class: 'stop', hidden: true, click: stop }, [icon('stop'), h('span', { class: 'sr', text: t('stop') })]);
    u.starters = h('div', { class: 'starters', role: 'group', 'aria-label': t('starters') });
    u.panel = h('section', { class: 'panel', id: 'sc-panel', role: 'dialog', 'aria-labelledby': 'sc-title', hidden: true, keydown: (e) => { if (e.key === 'Escape') { e.stopPropagation(); close(); } } }, [
      h('header', null, [
        avatar ? h('img', { src: avatar, alt: '', referrerpolicy: 'no-referrer' }) : null,
        h('h2', { id: 'sc-title', text: name }),
        iconButton('newChat', 'fresh', newConversation),
        iconButton('close', 'close', () => close()),
      ]),
      u.log,
      u.live,
      h('form', { submit: (e) => { e.preventDefault(); submit(); } }, [h('label', { class: 'sr', for: 'sc-input', text: t('label') }), u.input, u.send, u.stop]),
    ]);
    root.append(u.launcher, u.panel);
    shadow.appendChild(root);
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
    for (const q of starters.slice(0, 4)) ui.starters.appendChild(h('button', { text: q, click: () => hostSend(q) }));
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
    const text = clip(ui.input.value);
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
    else paint(msg, t);
    scrollDown(stick);
    return msg;
  }

  // Re-render at most every 40 ms (a timer, not rAF, which stops in background tabs).
  function schedulePaint(msg) {
    if (msg.pending) return;
    msg.pending = later(() => {
      msg.pending = 0;
      const stick = nearBottom();
      paint(msg, t);
      scrollDown(stick);
    }, 40);
  }

  // The message's text is final (complete, stopped or failed): paint it now, once.
  function settle(msg) {
    cancel(msg.pending);
    msg.pending = 0;
    msg.typing = false;
    flag(msg);
    paint(msg, t);
  }

  // The one line of state under an answer (reconnecting, stopped, interrupted), or none.
  function flag(msg, key) {
    if (msg.flag) msg.flag.remove();
    msg.flag = key ? addExtra(msg, h('div', { class: 'note', text: t(key) })) : null;
  }

  function announce(text) {
    // Cleared first so that the same text twice is still announced.
    ui.live.textContent = '';
    later(() => { ui.live.textContent = text; }, 50);
  }

  function setBusy(state) {
    // Send and stop swap places; focus on the one that hides moves to the input, not body.
    const focused = ui.shadow.activeElement;
    busy = state;
    ui.stop.hidden = !state;
    ui.send.hidden = !!state;
    ui.log.setAttribute('aria-busy', !!state);
    if (focused && (focused === ui.stop || focused === ui.send) && focused.hidden) ui.input.focus();
  }

  // -- chatting ------------------------------------------------------------------------
  function send(text) {
    if (busy) { queue.push(text); return; }
    addMessage('user', text);
    emit('message', { role: 'user', content: text, session_id: sessionId });
    ask(text, addMessage('bot', ''));
  }

  // Asks `text` into msg, or (resume: {sid, mid}, the session and message ids) follows an
  // answer that is still being written, as after a reload.
  async function ask(text, msg, resume) {
    const state = {};
    setBusy(state);
    msg.text = '';
    msg.typing = true;
    clearExtra(msg);
    paint(msg, t);
    state.answer = followAnswer(client, Object.assign({
      body: { message: text, chatbot_id: opts.chatbotId, session_id: sessionId },
      idleMs: limits().idleMs,
      onEvent(ev) {
        if (ev.type === 'start') remember(ev.session_id);
        else if (ev.type === 'sources') setSources(msg, ev.sources);
        else if (ev.type === 'token' && typeof ev.content === 'string') {
          msg.text += ev.content;
          msg.typing = false;
          schedulePaint(msg);
        }
      },
      onState(down) {
        flag(msg, down && 'reconnecting');
        if (down) announce(t('reconnecting'));
      },
      // The visitor token expired: a fresh one comes with the config.
      refresh: () => client.config().then((c) => { config = c; }, () => {}),
    }, resume));
    try {
      const ev = await state.answer.done;
      if (ev && ev.type === 'error') throw { event: ev };
      if (ev) finish(msg, ev);
      else stopped(msg);
    } catch (err) {
      if (state.stopped) stopped(msg);
      else fail(msg, err || {}, text);
    } finally {
      if (busy === state) setBusy(null);
    }
    if (!busy && queue.length) send(queue.shift());
  }

  function remember(id) {
    const valid = validSession(id);
    if (valid && valid !== sessionId) {
      sessionId = valid;
      local('setItem', sessionKey, valid);
    }
  }

  // A complete event: the whole answer, or (stopped) what was written before the stop.
  function finish(msg, ev) {
    if (typeof ev.content === 'string') msg.text = ev.content;
    if (ev.stopped) return stopped(msg);
    if (Array.isArray(ev.sources)) setSources(msg, ev.sources);
    remember(ev.session_id);
    settle(msg);
    showSources(msg, t);
    scrollDown(false);
    announce(t('bot') + ' ' + msg.bubble.textContent);
    emit('message', {
      role: 'assistant', content: msg.text, sources: Array.from(msg.sources.values()),
      message_id: ev.message_id || null, session_id: sessionId, fallback: !!ev.fallback,
    });
  }

  function stopped(msg) {
    settle(msg);
    flag(msg, 'stopped');
    if (msg.node.isConnected) announce(t('stopped'));
  }

  function fail(msg, failure, text) {
    settle(msg);
    const info = describeFailure(failure, Date.now());
    const message = failureText(info, t);
    const retry = h('button', { text: t('retry'), click: () => { cancel(tick); ask(text, msg); ui.input.focus(); } });
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

  // The server stops the answer; its stream then ends with what was written so far.
  function stop() {
    if (!busy) return;
    busy.stopped = true;
    busy.answer.stop();
    ui.input.focus();
  }

  function newConversation() {
    stop();
    // Nothing more of the old answer is shown, nor may its session come back.
    if (busy) busy.answer.close();
    queue.length = 0;
    sessionId = null;
    local('removeItem', sessionKey);
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
    restoring = client.messages(id).then((data) => {
      if (id !== sessionId) return;
      const list = data && Array.isArray(data.messages) ? data.messages : [];
      let question = '';
      for (const m of list) {
        if (!m || typeof m.content !== 'string') continue;
        if (m.role === 'user') addMessage('user', (question = m.content));
        else if (m.role === 'assistant') {
          const msg = addMessage('bot', m.content);
          // The last answer may still be being written (the page was reloaded mid-answer):
          // it is followed live from its first frame.
          if (m.status === 'streaming' && m === list[list.length - 1] && m.id) {
            scrollDown(true);
            ask(question, msg, { sid: id, mid: m.id });
            return;
          }
          setSources(msg, m.sources);
          paint(msg, t);
          showSources(msg, t);
          if (m.status && m.status !== 'complete') flag(msg, m.status === 'stopped' ? 'stopped' : 'interrupted');
        }
      }
      scrollDown(true);
    }, (err) => {
      if (err && (err.status === 404 || err.status === 422) && id === sessionId) {
        sessionId = null;
        local('removeItem', sessionKey);
      }
    });
    return restoring;
  }

  // -- what the host API drives ------------------------------------------------------------
  // Shows or hides the panel; the chat button then says what a click will do. Tells the host
  // page when that changed anything.
  function show(on) {
    const changed = ui.panel.hidden === on;
    ui.panel.hidden = !on;
    ui.root.classList.toggle('open', on);
    ui.launcher.setAttribute('aria-expanded', on);
    ui.launcher.setAttribute('aria-label', t(on ? 'close' : 'open'));
    if (changed) emit(on ? 'open' : 'close', {});
  }

  function open(focus) {
    show(true);
    if (focus) ui.input.focus();
    return restore().then(() => scrollDown(true));
  }

  function close() {
    const hadFocus = ui.panel.contains(ui.shadow.activeElement);
    show(false);
    if (hadFocus) ui.launcher.focus();
  }

  // Opens the panel (without moving focus) and asks; clipped to the server's limit.
  function hostSend(text) {
    const clean = clip(text);
    if (clean) open(false).then(() => send(clean));
  }

  // The browser is back online: a dropped answer reconnects now, not at its next try.
  const online = () => busy && busy.answer.wake();
  window.addEventListener('online', online);

  function destroy() {
    window.removeEventListener('online', online);
    if (busy) busy.answer.close();
    timers.forEach(clearTimeout);
    timers.clear();
    if (ui) ui.host.remove();
  }

  // The chatbot's config -> false when the chatbot does not exist. Any other failure still
  // shows the widget, with defaults.
  async function load() {
    if (!opts.chatbotId) throw new Error('data-chatbot-id is missing');
    try {
      config = await client.config();
    } catch (err) {
      if (err && err.status === 404) return false;
      config = null;
    }
    return true;
  }

  return { load, build, open, close, send: hostSend, destroy };
}
