/* The entry esbuild bundles into the one served file (an IIFE). It finds its own script tag,
 * reads the data-* attributes and the backend origin from the script's src, and installs the
 * host page's API, window.SitechatWidget, replaying calls queued on the documented stub. */
// The modules are strict, as ES modules are; the bundle is a classic script, so it says so.
'use strict';
import { readOptions } from './options.js';
import { createWidget } from './widget.js';

const VERSION = '1.0.0';

function findScript() {
  if (document.currentScript && document.currentScript.hasAttribute('data-chatbot-id')) return document.currentScript;
  const all = document.querySelectorAll('script[data-chatbot-id]');
  return all[all.length - 1] || null;
}

// The host API: calls made before the widget is built wait for it; events go to listeners.
function createHostAPI(opts) {
  const listeners = {};
  const waiting = []; // API calls made before the config arrived
  let ready = false;
  let dead = false;
  const emit = (name, detail) => {
    for (const fn of (listeners[name] || []).slice()) {
      try { fn(detail); } catch (err) { console.error('[sitechat]', err); }
    }
  };
  const widget = createWidget(opts, emit);
  const whenReady = (fn) => (...args) => {
    if (dead) return;
    if (ready) fn(...args);
    else waiting.push(() => fn(...args));
  };

  const api = {
    version: VERSION,
    open: whenReady(() => { widget.open(true); }),
    close: whenReady(() => widget.close()),
    send: whenReady((text) => widget.send(text)),
    on(name, fn) {
      if (typeof fn !== 'function') return () => {};
      (listeners[name] = listeners[name] || []).push(fn);
      return () => { listeners[name] = (listeners[name] || []).filter((f) => f !== fn); };
    },
    destroy() {
      dead = true;
      widget.destroy();
      for (const k in listeners) delete listeners[k];
      if (window.SitechatWidget === api) delete window.SitechatWidget;
    },
  };
  // Code that keeps pushing onto the stub's queue after load still works.
  api.q = { push: (call) => replay(call) };
  function replay(call) {
    if (!call || typeof api[call[0]] !== 'function' || call[0] === 'destroy') return;
    api[call[0]](...Array.from(call[1] || []));
  }

  async function start() {
    if (!(await widget.load())) {
      // An unknown chatbot shows nothing.
      emit('error', { code: 'chatbot_not_found', message: 'Unknown chatbot', status: 404 });
      dead = true;
      return;
    }
    if (dead) return;
    widget.build();
    ready = true;
    if (opts.open) widget.open(false);
    waiting.splice(0).forEach((fn) => fn());
  }

  return { api, start, replay };
}

function boot() {
  const existing = window.SitechatWidget;
  if (existing && existing.version) return; // loaded twice: the first one stays
  const script = findScript();
  if (!script) return;
  let host;
  try {
    host = createHostAPI(readOptions(script, window.location.href));
  } catch (err) {
    console.error('[sitechat]', err);
    return;
  }
  const pending = existing && Array.isArray(existing.q) ? existing.q.slice() : [];
  // A reference to the stub kept by the host now reaches the real widget too.
  if (existing && typeof existing === 'object') Object.assign(existing, host.api);
  window.SitechatWidget = host.api;
  pending.forEach(host.replay);
  const go = () => host.start().catch((err) => console.error('[sitechat]', err));
  if (document.body) go();
  else document.addEventListener('DOMContentLoaded', go, { once: true });
}

if (typeof document !== 'undefined') boot();
