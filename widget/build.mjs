// Bundles src/index.js into the one file the server sends to every visitor:
//   node build.mjs            -> backend/sitechat/api/web/static/sitechat.js (committed)
//   node build.mjs OUT.js     -> OUT.js (tests/widget/test_build.py compares the two)
// The file must stay within 11 KB gzipped (tests/widget/test_size.py), so besides esbuild's
// minification: esbuild shortens the internal property names in MANGLED, and terser then
// minifies the bundle again (about 3 % off the gzipped size).
// Deterministic: the same sources and tool versions give the same bytes (no source map, no
// paths, no dates in the output).
import { build, transform } from 'esbuild';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

const here = dirname(fileURLToPath(import.meta.url));
const outfile = process.argv[2]
  ? resolve(process.argv[2])
  : join(here, '..', 'backend', 'sitechat', 'api', 'web', 'static', 'sitechat.js');
const target = 'es2019';

// Property names that never cross the bundle's edge: not a field of the server's JSON, not a
// DOM or browser API, not the host page's SitechatWidget API, not a key of a labels table.
// Each is renamed alike everywhere in the bundle (a string with the same text, a class name
// say, is left alone). A label key in the list would break t('key'): it fails the build.
const MANGLED = [
  'bubble', 'pending', 'extra', 'flag', 'launcher', 'panel', 'live', 'shadow', 'answer',
  'items', 'indent', 'sub', 'nums', 'level', 'kind', 'requestId', 'chatbotId', 'maxChars',
  'idleMs', 'onEvent', 'onState', 'refresh', 'replay', 'wake', 'unexpected', 'retryAfter',
];
const labels = await readFile(join(here, 'src', 'strings.js'), 'utf8');
for (const name of MANGLED) {
  if (new RegExp(`\\b${name}:`).test(labels)) throw new Error(`build.mjs: "${name}" is a label key: it may not be mangled`);
}

// `import CSS from './styles.css'` gives the stylesheet minified, as a string: the widget puts
// it in its shadow root itself.
const cssAsText = {
  name: 'css-as-text',
  setup(b) {
    b.onLoad({ filter: /\.css$/ }, async (args) => {
      const css = await transform(await readFile(args.path, 'utf8'), { loader: 'css', minify: true, target });
      return { contents: css.code.trim(), loader: 'text' };
    });
  },
};

const bundled = await build({
  entryPoints: [join(here, 'src', 'index.js')],
  write: false,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target,
  minify: true,
  charset: 'ascii',
  legalComments: 'none',
  banner: { js: '/*! sitechat widget (widget/src, docs/widget.md) */' },
  mangleProps: new RegExp(`^(${MANGLED.join('|')})$`),
  plugins: [cssAsText],
  logLevel: 'warning',
});

const { code } = await minify(bundled.outputFiles[0].text, {
  ecma: 2019,
  compress: { passes: 2 },
  format: { ascii_only: true, comments: /^!/ },
});
await writeFile(outfile, code + '\n');
