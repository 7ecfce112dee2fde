// The one colour computed from the owner's theme (the CSS is styles.css).

// Text colour that stays readable on the owner's primary colour (WCAG relative luminance).
export function readableOn(hex) {
  const m = /^#([0-9a-f]{6})$/i.exec(hex || '');
  if (!m) return '#ffffff';
  const ch = (k) => {
    const v = parseInt(m[1].slice(k, k + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  };
  const lum = 0.2126 * ch(0) + 0.7152 * ch(2) + 0.0722 * ch(4);
  return lum > 0.45 ? '#111111' : '#ffffff';
}
