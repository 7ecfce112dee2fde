// Small DOM helpers for the widget's own elements. Text goes in through textContent only.

const ICONS = {
  chat: 'M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z',
  close: 'M6 6l12 12M18 6L6 18',
  fresh: 'M4 4v6h6M20 20v-6h-6M5.5 15a7 7 0 0 0 12.3 2M18.5 9A7 7 0 0 0 6.2 7',
  send: 'M5 12h13M12 5l7 7-7 7',
  stop: 'M7 7h10v10H7z',
};

// h('button', {class, text, click: fn, 'aria-label': ...}, [children]): text goes through
// textContent, functions become listeners, null/false attributes are left out (true ones are
// there: hidden="true" hides as hidden="" does). A button is type="button" unless it says
// otherwise.
export function h(tag, attrs, children) {
  const node = document.createElement(tag);
  if (tag === 'button') node.type = 'button';
  for (const key in attrs || {}) {
    const value = attrs[key];
    if (value == null || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (typeof value === 'function') node.addEventListener(key, value);
    else node.setAttribute(key, value);
  }
  for (const child of children || []) if (child) node.appendChild(child);
  return node;
}

export function icon(name) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', ICONS[name]);
  svg.appendChild(path);
  return svg;
}
