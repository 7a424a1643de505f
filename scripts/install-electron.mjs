// Fetches the Electron binary where the network allows it, and never fails the install.
// electron's own postinstall is denied in package.json "allowScripts" because on
// machines without access to the binary host it fails the whole `npm install`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const installTimeoutMs = 120_000;

function electronInstallScript() {
  try {
    return path.join(path.dirname(require.resolve('electron/package.json')), 'install.js');
  } catch {
    return null;
  }
}

const script = electronInstallScript();
if (process.env.QUORUMSCOPE_SKIP_ELECTRON === '1' || script === null || !existsSync(script)) {
  process.exit(0);
}
const result = spawnSync(process.execPath, [script], {
  stdio: ['ignore', 'ignore', 'pipe'],
  timeout: installTimeoutMs,
  encoding: 'utf8',
});
if (result.status === 0) {
  console.log('quorumscope: Electron binary installed; `npm start` opens the desktop app.');
} else {
  const reason = (result.stderr || result.error?.message || 'unknown error').trim().split('\n').pop();
  console.log(`quorumscope: Electron binary unavailable (${reason}); \`npm start\` runs web mode instead.`);
}
