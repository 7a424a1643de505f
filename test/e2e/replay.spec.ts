import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { syntheticMessages } from '../../bench/lib/synthetic-cluster';
import { exportRecording, openRecordingFile } from '../../src/main/hub/recorder/files';
import { Recorder } from '../../src/main/hub/recorder/recorder';
import { createClusterModel, reduce } from '../../src/shared/model';
import { silentLogger } from '../../src/shared/logger';
import { startWeb, type RunningWeb } from './web-server';

const startMs = 1_700_000_000_000;
let web: RunningWeb;
let dir: string;
let recordingFile: string;

/** A recorded synthetic cluster of 5 nodes with a failover every 40 s, exported as one .qsrec. */
function makeRecording(): string {
  let nowMs = startMs;
  const file = path.join(dir, 'recording.sqlite');
  const opened = Recorder.open(file, { nowMs: () => nowMs }, silentLogger);
  if (!opened.ok) throw new Error(opened.error.message);
  let model = createClusterModel();
  for (const message of syntheticMessages({ nodes: 5, sampleIntervalMs: 100, startMs, seed: 5, failoverEveryMs: 40_000 }, 120_000)) {
    nowMs = message.kind === 'sample' ? message.sample.atMs : message.kind === 'event' ? message.event.atMs : message.atMs;
    model = reduce(model, message);
    opened.data.record('demo', 'demo cluster', message, model);
  }
  opened.data.close();
  const store = openRecordingFile(file);
  if (!store.ok) throw new Error(store.error.message);
  const incidents = store.data.incidentRows('demo').map((row) => JSON.parse(row.body));
  const out = path.join(dir, 'incident.qsrec');
  const exported = exportRecording(store.data, { source: 'demo', fromMs: startMs, toMs: startMs + 120_000, title: 'demo', incidents }, out, 'test');
  store.data.close();
  if (!exported.ok) throw new Error(exported.error.message);
  return out;
}

test.beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'qs-e2e-replay-'));
  recordingFile = makeRecording();
  web = await startWeb();
});

test.afterAll(async () => {
  await web.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a recording opens in replay: scrub, play at 10×, jump to the next incident, back to live', async ({ page }) => {
  await page.goto(web.url);
  await page.getByTestId('replay-open-file').setInputFiles(recordingFile);
  await expect(page.getByTestId('replay-indicator')).toBeVisible();
  await expect(page.getByTestId('replay-indicator')).toHaveText(/REPLAY/);
  await page.screenshot({ path: 'docs/screenshots/replay-open.png' });

  // Scrub to 20 s into the recording: n1 leads then (the first failover is at 40 s).
  await page.getByTestId('replay-scrubber').fill(String(startMs + 20_000));
  await expect(page.getByTestId('replay-clock')).toContainText(new Date(startMs + 20_000).toISOString().slice(11, 19));
  await page.screenshot({ path: 'docs/screenshots/replay-scrubbed.png' });

  await page.getByTestId('replay-speed').selectOption('10');
  await page.getByTestId('replay-play').click();
  await expect(page.getByTestId('replay-play')).toHaveText('Pause');
  const before = await page.getByTestId('replay-clock').textContent();
  await page.waitForTimeout(1_000);
  const after = await page.getByTestId('replay-clock').textContent();
  expect(after).not.toBe(before);
  await page.getByTestId('replay-play').click();
  await expect(page.getByTestId('replay-play')).toHaveText('Play');

  await page.getByTestId('replay-next-incident').click();
  await expect(page.getByTestId('replay-current-incident')).toContainText('Failover');
  await page.screenshot({ path: 'docs/screenshots/replay-incident.png' });

  await page.getByTestId('replay-back-to-live').click();
  await expect(page.getByTestId('replay-indicator')).toBeHidden();
});

test('a file that is not a recording is refused with a clear message', async ({ page }) => {
  await page.goto(web.url);
  await page.getByTestId('replay-open-file').setInputFiles({ name: 'notes.qsrec', mimeType: 'application/octet-stream', buffer: Buffer.from('not a recording '.repeat(20)) });
  await expect(page.getByTestId('replay-error')).toContainText('not a Quorumscope recording');
  await expect(page.getByTestId('replay-indicator')).toBeHidden();
});

test('`quorumscope replay FILE` opens the recording in web mode, and refuses a damaged file with a clear message', async ({ page }) => {
  const { spawn, spawnSync } = await import('node:child_process');
  const { readFileSync, writeFileSync } = await import('node:fs');
  const configDir = mkdtempSync(path.join(os.tmpdir(), 'qs-e2e-replay-cli-'));
  const env = { ...process.env, QUORUMSCOPE_CONFIG_DIR: configDir };
  const child = spawn(process.execPath, ['bin/quorumscope.mjs', 'replay', recordingFile, '--port', '0', '--no-open', '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`replay did not start: ${output}`)), 20_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /(http:\/\/127\.0\.0\.1:\d+\/#session=\S+)/.exec(output);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once('exit', (code) => reject(new Error(`replay exited with ${code}: ${output}`)));
    });
    await page.goto(url);
    await expect(page.getByText('REPLAY').first()).toBeVisible();
    await expect(page.getByText('incident.qsrec').first()).toBeVisible();
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  const damaged = path.join(dir, 'damaged.qsrec');
  const bytes = readFileSync(recordingFile);
  writeFileSync(damaged, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const refused = spawnSync(process.execPath, ['bin/quorumscope.mjs', 'replay', damaged, '--port', '0', '--no-open'], { env, encoding: 'utf8', timeout: 20_000 });
  rmSync(configDir, { recursive: true, force: true });
  expect(refused.status).toBe(1);
  expect(refused.stderr).toMatch(/quorumscope replay: .*(truncated|damaged|not)/i);
});
