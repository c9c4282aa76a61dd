// Bundle apollo-page.js (Apollo Client 4, graphql-ws) into one browser script with esbuild,
// beside an index.html that loads it:   node build-apollo-page.mjs <folder>
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const folder = process.argv[2];
await build({
  entryPoints: ['apollo-page.js'],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
  outfile: join(folder, 'app.js'),
});
writeFileSync(
  join(folder, 'index.html'),
  '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">' +
    '<title>An app on another origin</title></head><body><script src="app.js"></script></body></html>\n',
);
