/**
 * The recorder (issue 7): sustained append rate, then a synthetic recording
 * of 50 nodes at 10 Hz (the reducer runs on every message, as live): its size
 * per sample and extrapolated to 24 h, seek to random times, and playback at
 * 60× (frame = the messages of 1 s of recording through the reducer plus the
 * renderer summary). The recording is generated once into /tmp and removed.
 *
 *   npm run bench -- recorder [--span-min N] [--nodes N] [--seeks N] [--frames N]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { syntheticMessages } from './lib/synthetic-cluster';
import { parseArgs, printTable, quantile, round, writeResult } from './lib/report';
import { openRecordingFile } from '../src/main/hub/recorder/files';
import { Player } from '../src/main/hub/recorder/player';
import { Recorder } from '../src/main/hub/recorder/recorder';
import { createClusterModel, reduce, type ClusterModel, type ModelMessage } from '../src/shared/model';
import { silentLogger } from '../src/shared/logger';

const options = parseArgs({ spanMin: 30, nodes: 50, seeks: 200, frames: 300, appendS: 60 });
const startMs = 1_700_000_000_000;
const dayMs = 24 * 60 * 60_000;
const frameMs = 1000 / 60;

function timeOf(message: ModelMessage): number {
  return message.kind === 'sample' ? message.sample.atMs : message.kind === 'event' ? message.event.atMs : message.atMs;
}

const directory = mkdtempSync(path.join(os.tmpdir(), 'quorumscope-recorder-bench-'));
try {
  // 1. Sustained append: messages and models prepared first, so only the recorder is timed (flushes included).
  const prepared: { message: ModelMessage; model: ClusterModel }[] = [];
  let model = createClusterModel();
  for (const message of syntheticMessages({ nodes: options.nodes, sampleIntervalMs: 100, startMs, seed: 11, failoverEveryMs: 600_000 }, options.appendS * 1000)) {
    model = reduce(model, message);
    prepared.push({ message, model });
  }
  let clockMs = startMs;
  const appendFile = path.join(directory, 'append.sqlite');
  const appendRecorder = Recorder.open(appendFile, { nowMs: () => clockMs }, silentLogger);
  if (!appendRecorder.ok) throw new Error(appendRecorder.error.message);
  const samples = prepared.filter((entry) => entry.message.kind === 'sample').length;
  const appendStarted = performance.now();
  let lastFlushMs = performance.now();
  for (const entry of prepared) {
    clockMs = timeOf(entry.message);
    appendRecorder.data.record('bench', 'bench', entry.message, entry.model);
    // The live recorder flushes on a 250 ms timer; this loop never yields, so it flushes on the same cadence itself.
    if (performance.now() - lastFlushMs >= 250) {
      appendRecorder.data.flush();
      lastFlushMs = performance.now();
    }
  }
  appendRecorder.data.close();
  const appendSeconds = (performance.now() - appendStarted) / 1000;
  const appendPerSecond = samples / appendSeconds;
  prepared.length = 0;

  // 2. The long recording, generated as live: reduce, then record.
  const spanMs = options.spanMin * 60_000;
  const file = path.join(directory, 'day.sqlite');
  const recorder = Recorder.open(file, { nowMs: () => clockMs }, silentLogger);
  if (!recorder.ok) throw new Error(recorder.error.message);
  const generationStarted = performance.now();
  let lastGenerationFlushMs = performance.now();
  let generatedSamples = 0;
  model = createClusterModel();
  for (const message of syntheticMessages({ nodes: options.nodes, sampleIntervalMs: 100, startMs, seed: 12, failoverEveryMs: 600_000 }, spanMs)) {
    clockMs = timeOf(message);
    model = reduce(model, message);
    recorder.data.record('bench', 'bench', message, model);
    if (message.kind === 'sample') generatedSamples += 1;
    if (performance.now() - lastGenerationFlushMs >= 250) {
      recorder.data.flush();
      lastGenerationFlushMs = performance.now();
    }
  }
  recorder.data.close();
  const generationSeconds = (performance.now() - generationStarted) / 1000;
  const bytes = statSync(file).size;
  const bytesPerSample = bytes / generatedSamples;
  const daySamples = (dayMs / 100) * options.nodes;
  const dayBytes = (bytes / spanMs) * dayMs;

  // 3. Seek to random times (deterministic), then 4. playback at 60×.
  const opened = openRecordingFile(file);
  if (!opened.ok) throw new Error(opened.error.message);
  const player = new Player(opened.data, { origin: 'file', label: 'bench', source: 'bench', sourceName: 'bench' }, { nowMs: () => 0 }, () => {}, []);
  const seekMs: number[] = [];
  let seed = 12345;
  for (let index = 0; index < options.seeks; index += 1) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const target = player.startMs + (seed / 2 ** 31) * (player.endMs - player.startMs);
    const started = performance.now();
    player.seek(target);
    player.state();
    seekMs.push(performance.now() - started);
  }
  const framesMs: number[] = [];
  player.seek(player.startMs + (player.endMs - player.startMs) / 3);
  let atMs = player.startMs + (player.endMs - player.startMs) / 3;
  for (let frame = 0; frame < options.frames; frame += 1) {
    atMs += frameMs * 60;
    const started = performance.now();
    player.advanceTo(atMs);
    player.state();
    framesMs.push(performance.now() - started);
  }
  opened.data.close();

  const result = {
    nodes: options.nodes,
    appendSamples: samples,
    appendSamplesPerSecond: Math.round(appendPerSecond),
    spanMinutes: options.spanMin,
    generatedSamples,
    generationSeconds: round(generationSeconds),
    fileBytes: bytes,
    bytesPerSample: round(bytesPerSample, 2),
    day: { samples: daySamples, extrapolatedBytes: Math.round(dayBytes), extrapolatedGiB: round(dayBytes / 1024 ** 3, 2) },
    seekMs: { p50: round(quantile(seekMs, 0.5)), p95: round(quantile(seekMs, 0.95)), max: round(Math.max(...seekMs)) },
    playback60xFrameMs: { p50: round(quantile(framesMs, 0.5)), p95: round(quantile(framesMs, 0.95)), max: round(Math.max(...framesMs)) },
  };
  printTable(
    ['measure', 'value', 'target'],
    [
      ['sustained append (samples/s)', result.appendSamplesPerSecond, '≥ 100,000'],
      [`recording of ${options.spanMin} min generated in (s)`, result.generationSeconds, ''],
      ['bytes per sample (keyframes and events included)', result.bytesPerSample, '≈ 20'],
      ['24 h × 50 nodes × 10 Hz, extrapolated (GiB)', result.day.extrapolatedGiB, '≤ 1 GB'],
      ['seek p50 / p95 (ms)', `${result.seekMs.p50} / ${result.seekMs.p95}`, 'p95 ≤ 100'],
      ['60× frame p50 / p95 (ms)', `${result.playback60xFrameMs.p50} / ${result.playback60xFrameMs.p95}`, 'p95 ≤ 16.7'],
    ],
  );
  console.log(`wrote ${writeResult('recorder', result)}`);
} finally {
  rmSync(directory, { recursive: true, force: true });
}
