import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { openRecordingFile } from '../../src/main/hub/recorder/files';
import { Player } from '../../src/main/hub/recorder/player';
import { Recorder } from '../../src/main/hub/recorder/recorder';
import { silentLogger } from '../../src/shared/logger';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'quorumscope-crash-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

it('a kill -9 of a recording process loses at most the last second, and the file reopens cleanly', async () => {
  const file = path.join(dir, 'recording.sqlite');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'fixtures/record-child.ts'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let reportedMs = 0;
  let firstMs = 0;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    for (const match of text.matchAll(/recorded (\d+)/g)) {
      reportedMs = Number(match[1]);
      firstMs ||= reportedMs;
    }
  });
  const deadline = Date.now() + 20_000;
  while ((firstMs === 0 || reportedMs - firstMs < 3_000) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  // Killed at an arbitrary moment between flushes.
  await new Promise((resolve) => setTimeout(resolve, 137));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  expect(reportedMs - firstMs).toBeGreaterThanOrEqual(3_000);

  // The next start of the app recovers what was flushed but not yet sealed.
  const reopened = Recorder.open(file, { nowMs: () => Date.now() }, silentLogger);
  if (!reopened.ok) throw new Error(reopened.error.message);
  const range = reopened.data.store.timeRange('p1');
  reopened.data.close();
  expect(range).not.toBeNull();
  expect(range?.endMs ?? 0).toBeGreaterThanOrEqual(reportedMs - 1_000);

  const opened = openRecordingFile(file);
  if (!opened.ok) throw new Error(opened.error.message);
  const player = new Player(opened.data, { origin: 'file', label: 'crash', source: 'p1', sourceName: 'prod' }, { nowMs: () => 0 }, () => {}, []);
  player.seek(reportedMs - 1_000);
  expect(player.currentModel()?.leader).not.toBeNull();
  expect(player.currentModel()?.nowMs).toBeGreaterThanOrEqual(reportedMs - 1_100);
  opened.data.close();
}, 40_000);
