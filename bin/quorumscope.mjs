#!/usr/bin/env node
// Runs the built command; `npm run build` produces it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'out', 'main', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write('quorumscope: not built yet; run `npm run build` (or `npm start`) first.\n');
  process.exit(2);
}
await import(cli);
