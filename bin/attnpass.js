#!/usr/bin/env node
// The attnpass command. The TypeScript sources are compiled to dist/ by `npm ci` (prepare) or `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/bin/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('attnpass: not built yet. Run `npm ci` (or `npm run build`) in the attnpass folder first.\n');
  process.exit(2);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));
