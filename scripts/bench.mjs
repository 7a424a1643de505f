#!/usr/bin/env node
// Runs one benchmark: `npm run bench -- NAME [args...]` runs bench/NAME.bench.ts
// with tsx and passes the remaining arguments through. Without a known NAME it
// lists the benchmarks that exist.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = path.join(root, 'bench');
const suffix = '.bench.ts';
const names = readdirSync(benchDir)
  .filter((file) => file.endsWith(suffix))
  .map((file) => file.slice(0, -suffix.length))
  .sort();

const [name, ...rest] = process.argv.slice(2);
if (name === undefined || !names.includes(name)) {
  if (name !== undefined) console.error(`unknown benchmark "${name}"`);
  console.log(`usage: npm run bench -- NAME [args...]\navailable: ${names.join(', ')}`);
  process.exit(name === undefined ? 0 : 2);
}

const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(benchDir, `${name}${suffix}`), ...rest], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
