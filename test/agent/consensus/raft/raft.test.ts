/**
 * Behaviours of Raft, each named after the sentence of the paper (Ongaro &
 * Ousterhout 2014, "§") or of Ongaro's thesis ("thesis §") it checks.
 */
import { describe, expect, it } from 'vitest';
import type { Entry, EngineOptions, RestoredState } from '../../../../src/agent/consensus/engine';
import { RaftEngine, type RaftMessage } from '../../../../src/agent/consensus/raft';
import { createRandom } from '../../../../src/shared/random';
import { Cluster, bytes, defaultClusterOptions, electedCluster, drain, engineOptionsFor, newCluster } from './harness';

// ---------------------------------------------------------------------------
// Helpers.


const engineOptions = (id: string, overrides: Partial<EngineOptions> = {}) => engineOptionsFor(id, overrides);

const emptyRestore: RestoredState = { hardState: null, snapshot: null, entries: [] };

/** A log from a list of terms: entry i+1 has term terms[i]. */
function logOf(terms: readonly number[]): Entry[] {
  return terms.map((term, position) => ({ index: position + 1, epoch: term, kind: 'normal', data: bytes(`${position + 1}@${term}`) }));
}

function restoredAt(term: number, terms: readonly number[], vote: string | null = null): RestoredState {
  return { hardState: { term, vote, commit: 0 }, snapshot: null, entries: logOf(terms) };
}


function storedTerms(cluster: Cluster, id: string): number[] {
  return cluster.node(id).storage.entries.map((entry) => entry.epoch);
}

function voteRequest(from: string, to: string, term: number, lastIndex: number, lastTerm: number): RaftMessage {
  return { type: 'vote', from, to, epoch: term, lastIndex, lastTerm, transfer: false };
}

function grantedVotes(messages: readonly RaftMessage[]): boolean[] {
  return messages.flatMap((message) => (message.type === 'vote-response' ? [!message.reject] : []));
}

// ---------------------------------------------------------------------------

describe('Raft basics (§5.1)', () => {
  it('a node that sees a later term adopts it and becomes a follower (Raft §5.1)', () => {
    const cluster = electedCluster(3);
    const leader = cluster.node('1').engine;
    leader.step({ type: 'heartbeat', from: '2', to: '1', epoch: 5, commit: 0, readContext: 0 });
    expect(leader.raftRole()).toBe('follower');
    expect(leader.status(0).epoch).toBe(5);
    expect(leader.status(0).leader).toBe('2');
  });

  it('a message from an earlier term is ignored (Raft §5.1)', () => {
    const engine = new RaftEngine(engineOptions('2'), restoredAt(4, [1, 2]));
    engine.step({ type: 'append', from: '1', to: '2', epoch: 3, previousIndex: 2, previousTerm: 2, entries: [], commit: 2 });
    expect(engine.status(0).commitIndex).toBe(0);
    expect(engine.status(0).leader).toBeNull();
    expect(drain(engine)).toEqual([]);
  });
});

describe('leader election (§5.2)', () => {
  it('a follower that hears from no leader starts an election after its election timeout (Raft §5.2)', () => {
    const engine = new RaftEngine(engineOptions('1'), emptyRestore);
    engine.tick();
    expect(engine.raftRole()).toBe('follower');
    engine.tick();
    for (let tick = 0; tick < 20; tick += 1) engine.tick();
    expect(engine.raftRole()).toBe('candidate');
    expect(engine.status(0).epoch).toBe(1);
    const requests = drain(engine).filter((message) => message.type === 'vote');
    expect(requests.map((message) => message.to)).toEqual(['2', '3']);
  });

  it('election timeouts are drawn at random from [electionTimeoutTicks, 2 * electionTimeoutTicks) (Raft §5.2)', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 200; seed += 1) {
      const engine = new RaftEngine(engineOptions('1', { random: createRandom(seed) }), emptyRestore);
      let ticks = 0;
      while (engine.raftRole() === 'follower') {
        engine.tick();
        ticks += 1;
      }
      seen.add(ticks);
    }
    expect(Math.min(...seen)).toBe(10);
    expect(Math.max(...seen)).toBe(19);
    expect(seen.size).toBe(10);
  });

  it('a candidate that receives votes from a majority becomes leader (Raft §5.2)', () => {
    const engine = new RaftEngine(engineOptions('1'), emptyRestore);
    engine.campaign();
    drain(engine);
    engine.step({ type: 'vote-response', from: '2', to: '1', epoch: 1, reject: false });
    expect(engine.raftRole()).toBe('leader');
  });

  it('a candidate refused by a majority returns to follower (Raft §5.2)', () => {
    const engine = new RaftEngine(engineOptions('1'), emptyRestore);
    engine.campaign();
    engine.step({ type: 'vote-response', from: '2', to: '1', epoch: 1, reject: true });
    expect(engine.raftRole()).toBe('candidate');
    engine.step({ type: 'vote-response', from: '3', to: '1', epoch: 1, reject: true });
    expect(engine.raftRole()).toBe('follower');
  });

  it('a node votes for at most one candidate in a term, first come first served (Raft §5.2)', () => {
    const engine = new RaftEngine(engineOptions('3'), emptyRestore);
    engine.step(voteRequest('1', '3', 1, 0, 0));
    engine.step(voteRequest('2', '3', 1, 0, 0));
    engine.step(voteRequest('1', '3', 1, 0, 0));
    expect(grantedVotes(drain(engine))).toEqual([true, false, true]);
  });

  it('a candidate that hears from a leader of its term becomes a follower (Raft §5.2)', () => {
    const engine = new RaftEngine(engineOptions('1'), emptyRestore);
    engine.campaign();
    engine.step({ type: 'append', from: '2', to: '1', epoch: 1, previousIndex: 0, previousTerm: 0, entries: [], commit: 0 });
    expect(engine.raftRole()).toBe('follower');
    expect(engine.status(0).leader).toBe('2');
  });

  it('the vote survives a restart, so a node never votes twice in a term (Raft §5.2, Figure 2)', () => {
    const cluster = newCluster(3);
    const voter = cluster.node('3');
    voter.engine.step(voteRequest('1', '3', 1, 0, 0));
    cluster.processReady('3');
    cluster.restart('3');
    voter.engine.step(voteRequest('2', '3', 1, 0, 0));
    expect(grantedVotes(drain(voter.engine))).toEqual([false]);
  });

  it('a leader is elected and all nodes agree on it (Raft §5.2)', () => {
    const cluster = newCluster(5);
    for (let round = 0; round < 40 && cluster.leaders().length === 0; round += 1) {
      cluster.tick(1);
      cluster.stabilize();
    }
    const [leader] = cluster.leaders();
    expect(leader).toBeDefined();
    for (const id of cluster.ids()) expect(cluster.node(id).engine.status(0).leader).toBe(leader);
  });
});

describe('election restriction (§5.4.1)', () => {
  it('a candidate with a stale log is refused a vote (Raft §5.4.1)', () => {
    // Voter's log ends at term 3; the candidate's ends at term 2, even though it is longer.
    const olderTerm = new RaftEngine(engineOptions('3'), restoredAt(3, [1, 3]));
    olderTerm.step(voteRequest('1', '3', 4, 5, 2));
    // Same last term, shorter log.
    const shorter = new RaftEngine(engineOptions('3'), restoredAt(3, [1, 3, 3]));
    shorter.step(voteRequest('1', '3', 4, 2, 3));
    expect(grantedVotes(drain(olderTerm))).toEqual([false]);
    expect(grantedVotes(drain(shorter))).toEqual([false]);
  });

  it('a candidate whose log is at least as up-to-date gets the vote (Raft §5.4.1)', () => {
    const sameLog = new RaftEngine(engineOptions('3'), restoredAt(3, [1, 3]));
    sameLog.step(voteRequest('1', '3', 4, 2, 3));
    const laterTerm = new RaftEngine(engineOptions('3'), restoredAt(3, [1, 1, 1, 1]));
    laterTerm.step(voteRequest('1', '3', 4, 2, 3));
    expect(grantedVotes(drain(sameLog))).toEqual([true]);
    expect(grantedVotes(drain(laterTerm))).toEqual([true]);
  });
});

describe('log replication (§5.3)', () => {
  it('an entry is committed once a majority stores it, and every node applies it (Raft §5.3)', () => {
    const cluster = electedCluster(3);
    cluster.partition([['1', '2'], ['3']]);
    expect(cluster.node('1').engine.propose(bytes('x'), 0).ok).toBe(true);
    cluster.stabilize();
    expect(cluster.node('1').engine.status(0).commitIndex).toBe(2);
    expect(cluster.node('1').applied).toEqual(['x']);
    cluster.heal();
    cluster.tick(1);
    cluster.stabilize();
    expect(cluster.node('3').applied).toEqual(['x']);
  });

  it('a follower rejects an append whose previous entry does not match (Raft §5.3)', () => {
    const engine = new RaftEngine(engineOptions('2'), restoredAt(2, [1, 1]));
    engine.step({ type: 'append', from: '1', to: '2', epoch: 2, previousIndex: 2, previousTerm: 2, entries: [], commit: 0 });
    const [response] = drain(engine);
    expect(response).toMatchObject({ type: 'append-response', reject: true, index: 2, hintTerm: 1, hintIndex: 1 });
  });

  it('a follower deletes conflicting entries and appends the leader\'s (Raft §5.3)', () => {
    const engine = new RaftEngine(engineOptions('2'), restoredAt(2, [1, 1, 1]));
    const entries: Entry[] = [{ index: 2, epoch: 2, kind: 'normal', data: bytes('new') }];
    engine.step({ type: 'append', from: '1', to: '2', epoch: 2, previousIndex: 1, previousTerm: 1, entries, commit: 0 });
    const ready = engine.ready();
    expect(ready.entries.map((entry) => `${entry.index}@${entry.epoch}`)).toEqual(['2@2']);
    expect(engine.status(0).lastIndex).toBe(2);
  });

  it('a follower never commits beyond the entries it got from the leader (Raft §5.3)', () => {
    const engine = new RaftEngine(engineOptions('2'), restoredAt(1, [1, 1, 1]));
    // Entry 3 may conflict with the leader's: only 1..2 are known to match.
    engine.step({ type: 'append', from: '1', to: '2', epoch: 2, previousIndex: 2, previousTerm: 1, entries: [], commit: 3 });
    expect(engine.status(0).commitIndex).toBe(2);
  });

  // Figure 7: the leader of term 8 and six possible follower logs.
  const figure7Leader = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const figure7Followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, followerTerms] of Object.entries(figure7Followers)) {
    it(`the leader brings follower (${name}) of Figure 7 into agreement with its log (Raft §5.3)`, () => {
      const cluster = new Cluster(defaultClusterOptions);
      const membership = { voters: ['1', '2', '3'], learners: [] };
      cluster.addNode('1', membership, {}, restoredAt(7, figure7Leader));
      cluster.addNode('2', membership, {}, restoredAt(7, followerTerms));
      // Node 3 holds the leader's log, so the leader can win even where (c) and (d) refuse.
      cluster.addNode('3', membership, {}, restoredAt(7, figure7Leader));
      cluster.node('1').engine.campaign();
      cluster.stabilize();
      expect(cluster.leaders()).toEqual(['1']);
      expect(cluster.node('1').engine.status(0).epoch).toBe(8);
      const expected = [...figure7Leader, 8];
      expect(storedTerms(cluster, '2')).toEqual(expected);
      expect(storedTerms(cluster, '1')).toEqual(expected);
    });
  }

  it('a rejection names the conflicting term and its first index, so a whole term is skipped at once (Raft §5.3)', () => {
    const cluster = new Cluster(defaultClusterOptions);
    const membership = { voters: ['1', '2', '3'], learners: [] };
    cluster.addNode('1', membership, {}, restoredAt(7, figure7Leader));
    cluster.addNode('2', membership, {}, restoredAt(7, figure7Followers.f as number[]));
    cluster.addNode('3', membership, {}, restoredAt(7, figure7Leader));
    cluster.node('1').engine.campaign();
    let rejections = 0;
    for (let round = 0; round < 50; round += 1) {
      for (const message of cluster.pendingMessages()) {
        if (message.type === 'append-response' && message.reject) rejections += 1;
      }
      cluster.stabilize(['1', '2', '3']);
      if (cluster.pendingMessages().length === 0 && !cluster.node('1').engine.hasReady()) break;
    }
    expect(storedTerms(cluster, '2')).toEqual([...figure7Leader, 8]);
    // Without hints the leader would back up one entry per round trip: 8 rejections.
    expect(rejections).toBeLessThanOrEqual(2);
  });
});

describe('commitment (§5.4.2)', () => {
  it('a new leader appends a no-op entry of its term (Raft §8)', () => {
    const cluster = electedCluster(3);
    const [first] = cluster.node('2').storage.entries;
    expect(first).toMatchObject({ index: 1, epoch: 1, kind: 'noop' });
  });

  /**
   * Figure 8: S1 leads term 4 and gets its term-2 entry at index 2 onto a
   * majority. Counting replicas must not commit it: S5 (last term 3) can
   * still be elected and overwrite it.
   */
  function figure8(EngineClass: typeof RaftEngine): { commitAfterMajority: number; appliedIndex2: Map<string, string> } {
    const cluster = new Cluster({ ...defaultClusterOptions, EngineClass });
    const membership = { voters: ['1', '2', '3', '4', '5'], learners: [] };
    cluster.addNode('1', membership, { appendBytesMax: 1 }, restoredAt(3, [1, 2]));
    cluster.addNode('2', membership, {}, restoredAt(3, [1, 2]));
    cluster.addNode('3', membership, {}, restoredAt(3, [1]));
    cluster.addNode('4', membership, {}, restoredAt(3, [1]));
    cluster.addNode('5', membership, {}, restoredAt(3, [1, 3]));
    const s1 = cluster.node('1').engine;

    // (c) S1 is elected in term 4 by S2, S3 and S4 (S5's log is more up-to-date and refuses).
    s1.campaign();
    cluster.processReady('1');
    cluster.deliver();
    for (const id of ['2', '3', '4', '5']) cluster.processReady(id);
    cluster.deliver(['1']);
    expect(s1.raftRole()).toBe('leader');
    // S1 sends its no-op; only S2 and S3 are reachable from now on.
    cluster.partition([['1', '2', '3'], ['4'], ['5']]);
    cluster.processReady('1');
    cluster.deliver();
    // S2 stores the no-op; S3 rejects (it lacks index 2) and is probed back.
    cluster.processReady('2');
    cluster.processReady('3');
    cluster.deliver(['1']);
    cluster.processReady('1');
    cluster.deliver(['3']);
    cluster.processReady('3');
    cluster.deliver(['1']);
    // S3 acknowledged index 2; the append carrying index 3 to S3 is lost.
    cluster.processReady('1');
    cluster.dropMessages((message) => message.to === '3' && message.type === 'append');
    cluster.stabilize(['1', '2']);
    const commitAfterMajority = s1.status(0).commitIndex;

    // (d) S1 crashes; S5 is elected in term 5 by S3, S4 and itself, and overwrites index 2.
    cluster.partition([['1'], ['2', '3', '4', '5']]);
    cluster.node('5').engine.campaign();
    // A bounded number of rounds: a broken variant may never settle.
    const survivors = ['2', '3', '4', '5'];
    for (let round = 0; round < 30; round += 1) {
      if (round % 10 === 0) cluster.tick(1, survivors);
      for (const id of survivors) if (cluster.node(id).engine.hasReady()) cluster.processReady(id);
      cluster.deliver(survivors);
    }

    expect(cluster.node('5').engine.raftRole()).toBe('leader');
    const appliedIndex2 = new Map<string, string>();
    for (const id of cluster.ids()) {
      const entry = cluster.node(id).storage.entries.find((stored) => stored.index === 2);
      if (entry !== undefined && cluster.node(id).appliedIndex >= 2) appliedIndex2.set(id, `2@${entry.epoch}`);
    }
    // S1 applied what it committed before the crash.
    if (commitAfterMajority >= 2) appliedIndex2.set('1', '2@2');
    return { commitAfterMajority, appliedIndex2 };
  }

  it('an entry of an earlier term is not committed by counting replicas (Raft §5.4.2, Figure 8)', () => {
    const { commitAfterMajority, appliedIndex2 } = figure8(RaftEngine);
    expect(commitAfterMajority).toBe(0);
    // State machine safety: every node that applied index 2 applied the same entry.
    expect(new Set(appliedIndex2.values()).size).toBe(1);
  });

  it('a variant without the current-term rule applies an entry that is later overwritten (why §5.4.2 exists)', () => {
    class CountsOldTermReplicas extends RaftEngine {
      protected override commitIndexByQuorum(): number {
        const status = this.status(0);
        const matches = status.voters.map((voter) =>
          voter === this.id ? status.lastIndex : (status.followers.find((follower) => follower.nodeId === voter)?.matchIndex ?? 0),
        );
        matches.sort((a, b) => b - a);
        return Math.max(status.commitIndex, matches[Math.floor(matches.length / 2)] ?? 0);
      }
    }
    const { commitAfterMajority, appliedIndex2 } = figure8(CountsOldTermReplicas);
    expect(commitAfterMajority).toBe(2);
    expect(new Set(appliedIndex2.values()).size).toBe(2);
  });

  it('once an entry of the current term commits, the earlier entries before it commit too (Raft §5.4.2)', () => {
    const cluster = new Cluster(defaultClusterOptions);
    const membership = { voters: ['1', '2', '3'], learners: [] };
    cluster.addNode('1', membership, {}, restoredAt(3, [1, 2]));
    cluster.addNode('2', membership, {}, restoredAt(3, [1]));
    cluster.addNode('3', membership, {}, restoredAt(3, [1]));
    cluster.node('1').engine.campaign();
    cluster.stabilize();
    expect(cluster.node('1').engine.status(0).commitIndex).toBe(3);
    expect(storedTerms(cluster, '2')).toEqual([1, 2, 4]);
  });

  it('a variant that ignores the log check elects a leader that lacks a committed entry (why §5.4.1 exists)', () => {
    class VotesForAnyone extends RaftEngine {
      protected override candidateLogIsUpToDate(): boolean {
        return true;
      }
    }
    const cluster = newCluster(3, { EngineClass: VotesForAnyone });
    cluster.node('1').engine.campaign();
    cluster.stabilize();
    cluster.partition([['1', '2'], ['3']]);
    cluster.node('1').engine.propose(bytes('committed'), 0);
    cluster.stabilize();
    expect(cluster.node('1').engine.status(0).commitIndex).toBe(2);
    cluster.partition([['2', '3'], ['1']]);
    cluster.node('3').engine.campaign();
    cluster.stabilize();
    // Node 3 never stored index 2, yet leads (with the §5.4.1 check node 2 would
    // have refused), and commits its own entry at index 2: two nodes applied
    // different entries at the same index.
    expect(cluster.node('3').engine.raftRole()).toBe('leader');
    expect(cluster.node('2').appliedIndex).toBeGreaterThanOrEqual(2);
    expect(cluster.node('3').appliedIndex).toBeGreaterThanOrEqual(2);
    const appliedAt2 = (id: string) => cluster.node(id).storage.entries.find((entry) => entry.index === 2)?.kind;
    expect(appliedAt2('2')).toBe('normal');
    expect(appliedAt2('3')).toBe('noop');
  });
});
