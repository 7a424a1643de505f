import { describe, expect, it } from 'vitest';
import {
  createClusterModel,
  lagHistoryPointsMax,
  recentKeysMax,
  reduce,
  reduceAll,
  summarizeForRenderer,
  summaryTimelineEntriesMax,
  type ModelMessage,
} from '../../../src/shared/model';
import { clusterSamples, event, run, steady } from './fixtures';

/** A long, busy stream: ten minutes of samples every 100 ms, a leader change every 20 s, lag that rises and falls. */
function busyStream(): ModelMessage[] {
  const messages: ModelMessage[] = [];
  for (let atMs = 1_000; atMs <= 600_000; atMs += 100) {
    const round = Math.floor(atMs / 20_000);
    const lagEntries = (atMs / 100) % 3_000;
    messages.push(...clusterSamples(atMs, { leader: round % 2 === 0 ? 'n1' : 'n2', epoch: 3 + round, lag: { n3: { lagEntries, lagMs: lagEntries } } }));
    if (atMs % 1_000 === 0) messages.push(event(atMs, 'n3', { type: 'node:joined', node: 'n3' }));
  }
  return messages;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

describe('bounded buffers', () => {
  const model = run(busyStream());

  it('keeps the timeline within timelineEntriesMax', () => {
    expect(model.timeline).toHaveLength(model.config.timelineEntriesMax);
  });

  it('keeps each lag series within its point bound', () => {
    for (const points of Object.values(model.lagHistory)) expect(points.length).toBeLessThanOrEqual(lagHistoryPointsMax(model.config));
    expect(model.lagHistory.n3?.length).toBeGreaterThan(500);
  });

  it('keeps only the lag window of history', () => {
    const oldestMs = Math.min(...Object.values(model.lagHistory).flatMap((points) => points.map((point) => point.atMs)));
    expect(model.nowMs - oldestMs).toBeLessThanOrEqual(model.config.lagHistoryWindowMs);
  });

  it('keeps the failovers within failoversMax', () => {
    const small = run(busyStream().slice(0, 60_000), { failoversMax: 5 });
    expect(small.failovers).toHaveLength(5);
  });

  it('keeps the cleared alerts within alertHistoryMax', () => {
    const small = run(busyStream().slice(0, 60_000), { alertHistoryMax: 3 });
    expect(small.alertHistory).toHaveLength(3);
  });

  it('keeps the remembered event ids within recentKeysMax', () => {
    expect(model.recentKeys).toHaveLength(recentKeysMax);
  });

  it('sends the renderer at most summaryTimelineEntriesMax timeline entries', () => {
    expect(summarizeForRenderer(model).timeline).toHaveLength(summaryTimelineEntriesMax);
  });
});

describe('lag history decimation', () => {
  it('keeps one point per interval, with the peak of the samples inside it', () => {
    const model = run([
      ...clusterSamples(1_000, { lag: { n2: { lagEntries: 10 } } }),
      ...clusterSamples(1_100, { lag: { n2: { lagEntries: 90 } } }),
      ...clusterSamples(1_200, { lag: { n2: { lagEntries: 20 } } }),
      ...clusterSamples(1_600, { lag: { n2: { lagEntries: 30 } } }),
    ]);
    expect(model.lagHistory.n2?.map((point) => point.lagEntries)).toEqual([90, 30]);
  });

  it('drops a follower\'s series once all its points have left the window', () => {
    const model = run([...clusterSamples(1_000, { lag: { n2: { lagEntries: 10 } } }), ...steady(100_000, 400_000, 100_000, { voters: 1 })]);
    expect(model.lagHistory.n2).toBeUndefined();
  });
});

describe('reducer purity', () => {
  it('gives deep-equal models for the same messages', () => {
    const messages = busyStream().slice(0, 20_000);
    expect(reduceAll(createClusterModel(), messages)).toEqual(reduceAll(createClusterModel(), messages));
  });

  it('never mutates the model it is given', () => {
    let model = deepFreeze(createClusterModel());
    for (const message of busyStream().slice(0, 5_000)) model = deepFreeze(reduce(model, message));
    expect(model.nowMs).toBeGreaterThan(0);
  });

  it('replays from a keyframe to the same model as the live run', () => {
    const messages = busyStream().slice(0, 10_000);
    const keyframe = structuredClone(reduceAll(createClusterModel(), messages.slice(0, 4_000)));
    expect(reduceAll(keyframe, messages.slice(4_000))).toEqual(reduceAll(createClusterModel(), messages));
  });
});
