import { describe, expect, it } from 'vitest';
import { StateHashTally, compareStateHashes, stateChecksTrackedMax } from '../../../src/agent/integrity/state-check';

const voters = ['n1', 'n2', 'n3'];
const reports = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe('state-hash comparison', () => {
  it('waits while fewer than a majority of voters have reported', () => {
    expect(compareStateHashes(reports({ n1: 'a' }), voters)).toEqual({ status: 'pending' });
  });

  it('agrees once a voter majority holds the same hash', () => {
    expect(compareStateHashes(reports({ n1: 'a', n2: 'a' }), voters)).toEqual({ status: 'agreed', hash: 'a' });
  });

  it('names the one replica whose hash differs from the majority', () => {
    expect(compareStateHashes(reports({ n1: 'a', n2: 'b', n3: 'a' }), voters)).toEqual({ status: 'minority', hash: 'a', majority: ['n1', 'n3'], minority: ['n2'] });
  });

  it('names a late replica as the minority after the majority agreed', () => {
    const early = compareStateHashes(reports({ n1: 'a', n3: 'a' }), voters);
    expect(early.status).toBe('agreed');
    expect(compareStateHashes(reports({ n1: 'a', n3: 'a', n2: 'z' }), voters)).toMatchObject({ status: 'minority', minority: ['n2'] });
  });

  it('stays pending on a 1-1 split while the missing voter could still decide it', () => {
    expect(compareStateHashes(reports({ n1: 'a', n2: 'b' }), voters)).toEqual({ status: 'pending' });
  });

  it('reports no majority when every voter reported a different hash', () => {
    expect(compareStateHashes(reports({ n1: 'a', n2: 'b', n3: 'c' }), voters)).toEqual({ status: 'no-majority', groups: [['n1'], ['n2'], ['n3']] });
  });

  it('reports no majority on a 2-2 tie among four voters', () => {
    const four = ['n1', 'n2', 'n3', 'n4'];
    expect(compareStateHashes(reports({ n1: 'a', n2: 'a', n3: 'b', n4: 'b' }), four)).toEqual({ status: 'no-majority', groups: [['n1', 'n2'], ['n3', 'n4']] });
    expect(compareStateHashes(reports({ n1: 'a', n2: 'a', n3: 'b' }), four)).toEqual({ status: 'pending' });
  });

  it('does not let a learner make a majority, but names a divergent learner', () => {
    expect(compareStateHashes(reports({ n1: 'a', learner: 'a' }), voters)).toEqual({ status: 'pending' });
    expect(compareStateHashes(reports({ n1: 'a', n2: 'a', learner: 'b' }), voters)).toMatchObject({ status: 'minority', minority: ['learner'] });
  });

  it('names two divergent replicas of five when three agree', () => {
    const five = ['n1', 'n2', 'n3', 'n4', 'n5'];
    expect(compareStateHashes(reports({ n1: 'a', n2: 'b', n3: 'a', n4: 'c', n5: 'a' }), five)).toMatchObject({ status: 'minority', minority: ['n2', 'n4'] });
  });
});

describe('the state-hash tally', () => {
  it('keeps only the newest indexes and refuses reports older than all of them', () => {
    const tally = new StateHashTally();
    for (let index = 1; index <= stateChecksTrackedMax + 4; index += 1) expect(tally.record(index * 10, 'n1', 'a')).toBe(true);
    expect(tally.trackedIndexes()).toHaveLength(stateChecksTrackedMax);
    expect(tally.trackedIndexes()[0]).toBe(50);
    expect(tally.record(10, 'n2', 'a')).toBe(false);
    expect(tally.verdict(10, voters)).toEqual({ status: 'pending' });
  });

  it('replaces a node’s report at the same index rather than counting it twice', () => {
    const tally = new StateHashTally();
    tally.record(5, 'n1', 'a');
    tally.record(5, 'n1', 'a');
    expect(tally.verdict(5, voters)).toEqual({ status: 'pending' });
    tally.record(5, 'n2', 'a');
    expect(tally.verdict(5, voters)).toEqual({ status: 'agreed', hash: 'a' });
  });
});
