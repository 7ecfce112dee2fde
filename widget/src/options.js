// What the embedding page and the server ask of the widget: the script tag's data-*
// attributes and the limits in the chatbot's config. Pure.

// The API base is the script's URL less "/widget/<file>" (path prefixes keep working).
export function readOptions(script, pageUrl) {
  const attr = (name) => (script.getAttribute('data-' + name) || '').trim();
  const src = new URL(script.getAttribute('src') || '', pageUrl);
  const derived = src.origin + src.pathname.replace(/\/widget\/[^/]*$/, '');
  const position = attr('position');
  return {
    chatbotId: attr('chatbot-id'),
    api: (attr('api') || derived).replace(/\/+$/, ''),
    position: /^bottom-(left|right)$/.test(position) ? position : '',
    open: attr('open') === 'true',
    language: attr('language').toLowerCase().slice(0, 2),
  };
}

const within = (value, low, high) => typeof value === 'number' && value >= low && value <= high;

// config.limits {max_message_chars, idle_timeout_seconds} -> {maxChars, idleMs}. Older servers
// send none: the defaults are then the server's own (the API pings every 15 s, so 45 s of
// silence is three missed pings). A value that is no sensible number keeps its default: an
// idle timeout under a second would cut healthy streams, one over 1e6 s overflows setTimeout.
export function readLimits(config) {
  const limits = (config && config.limits) || {};
  const chars = limits.max_message_chars;
  const seconds = limits.idle_timeout_seconds;
  return {
    maxChars: within(chars, 1, 1e9) ? chars : 4000,
    idleMs: (within(seconds, 1, 1e6) ? seconds : 45) * 1000,
  };
}
