// Bundles src/index.js into the one file the server sends to every visitor:
//   node build.mjs            -> backend/sitechat/api/web/static/sitechat.js (committed)
//   node build.mjs OUT.js     -> OUT.js (tests/widget/test_build.py compares the two)
// Deterministic: the same sources and esbuild version give the same bytes (no source map, no
// paths, no dates in the output).
import { build, transform } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outfile = process.argv[2]
  ? resolve(process.argv[2])
  : join(here, '..', 'backend', 'sitechat', 'api', 'web', 'static', 'sitechat.js');
const target = 'es2019';

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

await build({
  entryPoints: [join(here, 'src', 'index.js')],
  outfile,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target,
  minify: true,
  charset: 'ascii',
  legalComments: 'none',
  banner: { js: '/*! sitechat widget (widget/src, docs/widget.md) */' },
  plugins: [cssAsText],
  logLevel: 'warning',
});
