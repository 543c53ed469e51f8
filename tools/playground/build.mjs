// Copies GraphiQL's browser build (and React's) into app/static/playground, minified: the
// playground then loads nothing from the network. Run by `make playground`; the output is
// committed, so `make run` needs Python only.
import { buildSync } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const out = join(import.meta.dirname, '..', '..', 'app', 'static', 'playground');
mkdirSync(out, { recursive: true });

const graphiql = dirname(require.resolve('graphiql/package.json'));
for (const [source, target] of [
  [join(graphiql, 'graphiql.min.js'), 'graphiql.js'],
  [join(graphiql, 'graphiql.min.css'), 'graphiql.css'],
]) {
  // GraphiQL's UMD build is not minified; minifying it takes it from 3.5 MB to 1.5 MB.
  buildSync({
    entryPoints: [source],
    outfile: join(out, target),
    minify: true,
    logLevel: 'error',
  });
}
const react = dirname(require.resolve('react/package.json'));
const reactDom = dirname(require.resolve('react-dom/package.json'));
copyFileSync(join(react, 'umd', 'react.production.min.js'), join(out, 'react.js'));
copyFileSync(join(reactDom, 'umd', 'react-dom.production.min.js'), join(out, 'react-dom.js'));

const versions = ['graphiql', 'react', 'react-dom']
  .map((name) => `${name} ${require(`${name}/package.json`).version}`)
  .join(', ');
const licenses = [
  ['graphiql', graphiql],
  ['react', react],
  ['react-dom', reactDom],
]
  .map(([name, folder]) => `${name}\n\n${readFileSync(join(folder, 'LICENSE'), 'utf8')}`)
  .join('\n\n');
writeFileSync(join(out, 'LICENSES.txt'), `Built from ${versions}.\n\n${licenses}`);
