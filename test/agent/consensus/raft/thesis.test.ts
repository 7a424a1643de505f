/**
 * Behaviours from Ongaro's thesis (PreVote, CheckQuorum, leader lease,
 * leadership transfer, ReadIndex, snapshots, membership) and the engine's
 * contract with its host (Ready, hard state, status, message validation).
 */
import { describe, expect, it } from 'vitest';
import type { EngineOptions, Entry, RestoredState } from '../../../../src/agent/consensus/engine';
import { RaftEngine, decodeConfigEntry, raftFactory, type RaftMessage } from '../../../../src/agent/consensus/raft';
import { EventBodySchema, type EventBody } from '../../../../src/shared/protocol';
import { Cluster, bytes, electedCluster, drain, engineOptionsFor, newCluster } from './harness';

/** Runs the cluster tick by tick, delivering everything after each tick. */
function runTicks(cluster: Cluster, ticks: number, ids: string[] = cluster.ids()): void {
  for (let tick = 0; tick < ticks; tick += 1) {
    cluster.tick(1, ids);
    cluster.stabilize(ids);
  }
}

function eventTypes(cluster: Cluster, action: () => void): string[] {
  action();
  const types: string[] = [];
  for (const line of cluster.stabilize()) {
    const match = /^ {2}event (\S+)/.exec(line);
    if (match?.[1] !== undefined) types.push(match[1]);
  }
  return types;
}

function terms(cluster: Cluster): number[] {
  return cluster.ids().map((id) => cluster.node(id).engine.status(0).epoch);
}

describe('PreVote (thesis §9.6)', () => {
  it('a partitioned node does not raise its term, so it rejoins without disrupting the leader (thesis §9.6)', () => {
    const cluster = electedCluster(3, { preVote: true });
    cluster.partition([['1', '2'], ['3']]);
    runTicks(cluster, 100);
    expect(cluster.node('3').engine.status(0).epoch).toBe(1);
    cluster.heal();
    runTicks(cluster, 5);
    expect(cluster.leaders()).toEqual(['1']);
    expect(terms(cluster)).toEqual([1, 1, 1]);
  });

  it('without PreVote the rejoining node forces an election in a later term (thesis §9.6)', () => {
    const cluster = electedCluster(3, { preVote: false });
    cluster.partition([['1', '2'], ['3']]);
    runTicks(cluster, 100);
    expect(cluster.node('3').engine.status(0).epoch).toBeGreaterThan(1);
    cluster.heal();
    runTicks(cluster, 40);
    expect(Math.min(...terms(cluster))).toBeGreaterThan(1);
  });

  it('a pre-vote is granted without changing the voter\'s term or vote (thesis §9.6)', () => {
    const engine = new RaftEngine(options('3', { preVote: true }), restored(1, '1', [1]));
    engine.step({ type: 'pre-vote', from: '2', to: '3', epoch: 2, lastIndex: 1, lastTerm: 1, transfer: false });
    const [response] = drain(engine);
    expect(response).toMatchObject({ type: 'pre-vote-response', reject: false, epoch: 2 });
    expect(engine.status(0).epoch).toBe(1);
  });
});

describe('CheckQuorum and leader lease (thesis §6.2, §4.2.3)', () => {
  it('a leader that has not heard from a quorum within an election timeout steps down (thesis §6.2)', () => {
    const cluster = electedCluster(3, { checkQuorum: true });
    cluster.partition([['1'], ['2', '3']]);
    const types: string[] = [];
    for (let tick = 0; tick < 20; tick += 1) {
      cluster.tick(1, ['1']);
      for (const line of cluster.stabilize(['1'])) if (line.includes('event leader:lost')) types.push(line);
    }
    expect(cluster.node('1').engine.raftRole()).toBe('follower');
    expect(types).toHaveLength(1);
  });

  it('a leader in touch with a quorum keeps leading (thesis §6.2)', () => {
    const cluster = electedCluster(3, { checkQuorum: true });
    runTicks(cluster, 50);
    expect(cluster.leaders()).toEqual(['1']);
  });

  it('a follower that heard from the leader recently ignores a vote request (thesis §4.2.3)', () => {
    const cluster = electedCluster(3, { checkQuorum: true });
    const follower = cluster.node('2').engine;
    follower.step({ type: 'vote', from: '3', to: '2', epoch: 9, lastIndex: 9, lastTerm: 9, transfer: false });
    expect(follower.status(0).epoch).toBe(1);
    expect(cluster.node('2').engine.hasReady()).toBe(false);
  });

  it('a vote request from a transfer campaign overrides the lease (thesis §3.10, §4.2.3)', () => {
    const cluster = electedCluster(3, { checkQuorum: true });
    const follower = cluster.node('2').engine;
    follower.step({ type: 'vote', from: '3', to: '2', epoch: 9, lastIndex: 9, lastTerm: 9, transfer: true });
    expect(follower.status(0).epoch).toBe(9);
  });
});

describe('leadership transfer (thesis §3.10)', () => {
  it('the leader catches the target up, sends TimeoutNow, and the target wins the next term (thesis §3.10)', () => {
    const cluster = electedCluster(3);
    cluster.partition([['1', '2'], ['3']]);
    cluster.node('1').engine.propose(bytes('a'), 0);
    cluster.stabilize();
    cluster.heal();
    const types = eventTypes(cluster, () => expect(cluster.node('1').engine.transferLeadership('3').ok).toBe(true));
    expect(cluster.leaders()).toEqual(['3']);
    expect(cluster.node('3').applied).toEqual(['a']);
    expect(types).toContain('transfer:requested');
    expect(types).toContain('transfer:completed');
  });

  it('proposals are refused while a transfer is in progress (thesis §3.10)', () => {
    const cluster = electedCluster(3);
    cluster.partition([['1', '2'], ['3']]);
    cluster.node('1').engine.transferLeadership('3');
    const result = cluster.node('1').engine.propose(bytes('x'), 0);
    expect(result.ok ? null : result.error.code).toBe('transferring');
  });

  it('a transfer aborts after an election timeout, with a reason (thesis §3.10)', () => {
    const cluster = electedCluster(3);
    cluster.partition([['1', '2'], ['3']]);
    cluster.node('1').engine.transferLeadership('3');
    const lines: string[] = [];
    for (let tick = 0; tick < 10; tick += 1) {
      cluster.tick(1);
      lines.push(...cluster.stabilize());
    }
    const aborted = lines.find((line) => line.includes('event transfer:aborted'));
    expect(aborted).toContain('reason=3 did not take over within an election timeout');
    expect(cluster.node('1').engine.status(0).transferringTo).toBeNull();
    expect(cluster.node('1').engine.propose(bytes('x'), 0).ok).toBe(true);
  });

  it('a transfer to an unknown node, to the leader itself, to a learner or from a follower is refused with a code (thesis §3.10)', () => {
    const cluster = electedCluster(3);
    cluster.node('1').engine.changeMembership({ type: 'add-learner', node: '4' });
    cluster.stabilize();
    const code = (from: string, to: string): string | null => {
      const result = cluster.node(from).engine.transferLeadership(to);
      return result.ok ? null : result.error.code;
    };
    expect(code('1', '9')).toBe('unknown_node');
    expect(code('1', '1')).toBe('target_is_self');
    expect(code('1', '4')).toBe('target_is_learner');
    expect(code('2', '3')).toBe('not_leader');
  });
});

describe('ReadIndex (thesis §6.4)', () => {
  it('a read on the leader completes only after a quorum acknowledges a heartbeat round (thesis §6.4)', () => {
    const cluster = electedCluster(3);
    cluster.partition([['1'], ['2', '3']]);
    expect(cluster.node('1').engine.readIndex('r1').ok).toBe(true);
    const cutOff = cluster.stabilize();
    expect(cutOff.some((line) => line.includes('read r1'))).toBe(false);
    cluster.heal();
    cluster.tick(1, ['1']);
    const healed = cluster.stabilize();
    expect(healed).toContain('  read r1 index=1');
  });

  it('a new leader refuses reads until it has committed an entry of its term (thesis §6.4)', () => {
    const cluster = newCluster(3);
    cluster.node('1').engine.campaign();
    cluster.processReady('1');
    cluster.deliver();
    for (const id of ['2', '3']) cluster.processReady(id);
    cluster.deliver(['1']);
    expect(cluster.node('1').engine.raftRole()).toBe('leader');
    const result = cluster.node('1').engine.readIndex('early');
    expect(result.ok ? null : result.error.code).toBe('not_ready');
  });

  it('a follower forwards a read to the leader and gets the read index back (thesis §6.4)', () => {
    const cluster = electedCluster(3);
    cluster.node('1').engine.propose(bytes('x'), 0);
    cluster.stabilize();
    expect(cluster.node('2').engine.readIndex('r2').ok).toBe(true);
    expect(cluster.stabilize()).toContain('  read r2 index=2');
  });

  it('a read with no known leader is refused (thesis §6.4)', () => {
    const cluster = newCluster(3);
    const result = cluster.node('2').engine.readIndex('r');
    expect(result.ok ? null : result.error.code).toBe('no_leader');
  });
});

describe('snapshots and log compaction (thesis §5)', () => {
  it('compaction drops the log prefix and a follower behind it is caught up with a snapshot (thesis §5.1)', () => {
    const cluster = electedCluster(3);
    cluster.partition([['1', '2'], ['3']]);
    for (const data of ['a', 'b', 'c']) cluster.node('1').engine.propose(bytes(data), 0);
    cluster.stabilize();
    expect(cluster.compact('1', 4)).toBe('ok');
    expect(cluster.node('1').storage.entries).toEqual([]);
    cluster.heal();
    cluster.tick(1);
    const lines = cluster.stabilize();
    expect(lines.some((line) => line.includes('1->3 snapshot'))).toBe(true);
    expect(cluster.node('3').applied).toEqual(['a', 'b', 'c']);
    expect(cluster.node('3').engine.status(0).commitIndex).toBe(4);
  });

  it('a node restarts from its snapshot and the entries after it (thesis §5.1)', () => {
    const cluster = electedCluster(3);
    for (const data of ['a', 'b']) cluster.node('1').engine.propose(bytes(data), 0);
    cluster.stabilize();
    expect(cluster.compact('2', 3)).toBe('ok');
    cluster.node('1').engine.propose(bytes('c'), 0);
    cluster.stabilize();
    cluster.restart('2');
    cluster.tick(1);
    cluster.stabilize();
    expect(cluster.node('2').applied).toEqual(['a', 'b', 'c']);
    expect(cluster.node('2').engine.status(0).lastIndex).toBe(4);
  });

  it('compaction beyond the applied index is refused (thesis §5.1)', () => {
    const cluster = electedCluster(3);
    const result = cluster.node('1').engine.compact({ meta: { index: 5, epoch: 1, membership: { voters: ['1', '2', '3'], learners: [] } }, data: bytes('[]') });
    expect(result.ok ? null : result.error.code).toBe('not_applied');
  });
});

describe('membership changes (thesis §4.1)', () => {
  it('a config entry takes effect when appended, before it commits (thesis §4.1)', () => {
    const cluster = electedCluster(3);
    cluster.partition([['1'], ['2', '3']]);
    cluster.node('1').engine.changeMembership({ type: 'add-learner', node: '4' });
    cluster.stabilize();
    const status = cluster.node('1').engine.status(0);
    expect(status.commitIndex).toBe(1);
    expect(status.learners).toEqual(['4']);
  });

  it('only one membership change may be in progress at a time (thesis §4.1)', () => {
    const cluster = electedCluster(3);
    cluster.partition([['1'], ['2', '3']]);
    cluster.node('1').engine.changeMembership({ type: 'add-learner', node: '4' });
    const second = cluster.node('1').engine.changeMembership({ type: 'add-learner', node: '5' });
    expect(second.ok ? null : second.error.code).toBe('change_in_progress');
  });

  it('a learner receives the log but does not count towards a quorum (thesis §4.2.1)', () => {
    const cluster = electedCluster(3);
    cluster.addNode('4', { voters: [], learners: [] });
    cluster.node('1').engine.changeMembership({ type: 'add-learner', node: '4' });
    cluster.stabilize();
    cluster.partition([['1', '4'], ['2', '3']]);
    cluster.node('1').engine.propose(bytes('x'), 0);
    cluster.stabilize();
    expect(cluster.node('4').engine.status(0).lastIndex).toBe(3);
    expect(cluster.node('1').engine.status(0).commitIndex).toBe(2);
    expect(cluster.node('4').engine.status(0).role).toBe('learner');
  });

  it('a promoted learner votes and counts (thesis §4.2.1)', () => {
    const cluster = electedCluster(3);
    cluster.addNode('4', { voters: [], learners: [] });
    cluster.node('1').engine.changeMembership({ type: 'add-learner', node: '4' });
    cluster.stabilize();
    cluster.node('1').engine.changeMembership({ type: 'promote-learner', node: '4' });
    cluster.stabilize();
    cluster.partition([['1', '2', '4'], ['3']]);
    cluster.node('1').engine.propose(bytes('x'), 0);
    cluster.stabilize();
    expect(cluster.node('1').engine.status(0).voters).toEqual(['1', '2', '3', '4']);
    expect(cluster.node('1').engine.status(0).commitIndex).toBe(4);
  });

  it('a removed leader steps down once the change commits (thesis §4.2.2)', () => {
    const cluster = electedCluster(3);
    cluster.node('1').engine.changeMembership({ type: 'remove-node', node: '1' });
    cluster.stabilize();
    expect(cluster.node('1').engine.raftRole()).toBe('follower');
    const leaders = cluster.leaders();
    expect(leaders).toHaveLength(1);
    expect(leaders[0]).not.toBe('1');
    expect(cluster.node(leaders[0] as string).engine.status(0).voters).toEqual(['2', '3']);
  });

  it('a config entry that is truncated no longer applies (thesis §4.1)', () => {
    const cluster = electedCluster(5);
    // Only node 2 gets leader 1's config entry before leader 1 is cut off.
    cluster.node('1').engine.changeMembership({ type: 'add-learner', node: '6' });
    cluster.processReady('1');
    cluster.dropMessages((message) => message.to !== '2');
    cluster.deliver(['2']);
    cluster.processReady('2');
    expect(cluster.node('2').engine.status(0).learners).toEqual(['6']);
    // Node 3 wins term 2 with nodes 4 and 5 and overwrites node 2's index 2.
    cluster.partition([['1'], ['2', '3', '4', '5']]);
    cluster.node('3').engine.campaign();
    const lines = cluster.stabilize(['2', '3', '4', '5']);
    expect(cluster.leaders()).toContain('3');
    expect(cluster.node('2').engine.status(0).learners).toEqual([]);
    expect(cluster.node('2').storage.entries.find((entry) => entry.index === 2)?.kind).toBe('noop');
    expect(lines.some((line) => line.includes('membership:changed') && line.includes('reverted'))).toBe(true);
  });

  it('config entries carry the whole membership as JSON (membership.ts)', () => {
    const cluster = electedCluster(3);
    cluster.node('1').engine.changeMembership({ type: 'add-voter', node: '4' });
    const entry = cluster.node('1').engine.ready().entries.find((candidate: Entry) => candidate.kind === 'config');
    expect(entry).toBeDefined();
    const decoded = decodeConfigEntry((entry as Entry).data);
    expect(decoded.ok && decoded.data).toEqual({ membership: { voters: ['1', '2', '3', '4'], learners: [] }, change: 'add-voter 4' });
  });
});

describe('host contract: Ready, hard state, status, events', () => {
  it('hard state is emitted whenever term, vote or commit changed, and only then', () => {
    const engine = new RaftEngine(options('1'), restored(0, null, []));
    engine.campaign();
    const first = engine.ready();
    expect(first.hardState).toEqual({ term: 1, vote: '1', commit: 0 });
    engine.advance(first);
    engine.tick();
    expect(engine.hasReady()).toBe(false);
  });

  it('a follower restored from storage keeps its term, vote, log and commit index', () => {
    const entries: Entry[] = [1, 1, 2].map((term, position) => ({ index: position + 1, epoch: term, kind: 'normal', data: bytes('x') }));
    const engine = new RaftEngine(options('2'), { hardState: { term: 2, vote: '1', commit: 2 }, snapshot: null, entries });
    const status = engine.status(0);
    expect(status).toMatchObject({ epoch: 2, commitIndex: 2, lastIndex: 3, appliedIndex: 0, role: 'follower' });
    const ready = engine.ready();
    expect(ready.committedEntries.map((entry) => entry.index)).toEqual([1, 2]);
    expect(ready.entries).toEqual([]);
  });

  it('every event the engine emits matches the shared event schema', () => {
    const cluster = electedCluster(3, { preVote: true, checkQuorum: true });
    const events: EventBody[] = [];
    for (const id of cluster.ids()) {
      const engine = cluster.node(id).engine;
      engine.transferLeadership('2');
      engine.changeMembership({ type: 'add-learner', node: '4' });
      while (engine.hasReady()) {
        const ready = engine.ready();
        events.push(...ready.events);
        engine.advance(ready);
      }
    }
    expect(events.length).toBeGreaterThan(0);
    for (const event of events) expect(EventBodySchema.safeParse(event).success).toBe(true);
  });

  it('leader:elected reports how many ticks the node went without a leader', () => {
    const cluster = electedCluster(3);
    cluster.partition([['1'], ['2', '3']]);
    let elected: string | undefined;
    for (let tick = 0; tick < 40 && elected === undefined; tick += 1) {
      cluster.tick(1, ['2', '3']);
      elected = cluster.stabilize(['2', '3']).find((line) => line.includes('event leader:elected'));
    }
    expect(elected).toMatch(/leaderlessTicks=(1\d)\b/);
  });

  it('status reports per-follower lag in entries and ms, and time since last contact', () => {
    const cluster = electedCluster(3);
    cluster.partition([['1', '2'], ['3']]);
    cluster.tick(5);
    cluster.stabilize();
    cluster.node('1').engine.propose(bytes('a'), 1_000);
    cluster.node('1').engine.propose(bytes('b'), 1_200);
    cluster.stabilize();
    const status = cluster.node('1').engine.status(1_500);
    expect(status).toMatchObject({ role: 'leader', epoch: 1, epochLabel: 'term 1', leader: '1', lastIndex: 3, commitIndex: 3 });
    const [two, three] = status.followers;
    expect(two).toMatchObject({ nodeId: '2', lagEntries: 0, lagMs: 0, lastContactMs: 0, state: 'replicate' });
    expect(three).toMatchObject({ nodeId: '3', lagEntries: 2, lagMs: 500, matchIndex: 1 });
    expect(three?.lastContactMs).toBe(500);
  });
});

describe('message validation (trust boundary)', () => {
  it('a valid message parses', () => {
    const message: RaftMessage = { type: 'heartbeat', from: '1', to: '2', epoch: 3, commit: 4, readContext: 0 };
    expect(raftFactory.parseMessage(message)).toEqual({ ok: true, data: message });
    expect(raftFactory.kind).toBe('raft');
  });

  it('an invalid message is refused with an error naming the field', () => {
    const result = raftFactory.parseMessage({ type: 'append', from: '1', to: '2', epoch: -1, previousIndex: 0, previousTerm: 0, entries: [], commit: 0 });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe('invalid_message');
      expect(result.error.message).toContain('message.epoch');
    }
  });

  it('entries must be contiguous after previousIndex and carry bytes', () => {
    const entry = { index: 5, epoch: 1, kind: 'normal', data: bytes('x') };
    const gap = raftFactory.parseMessage({ type: 'append', from: '1', to: '2', epoch: 1, previousIndex: 0, previousTerm: 0, entries: [entry], commit: 0 });
    expect(!gap.ok && gap.error.message).toContain('message.entries.0.index');
    const notBytes = raftFactory.parseMessage({ type: 'append', from: '1', to: '2', epoch: 1, previousIndex: 4, previousTerm: 0, entries: [{ ...entry, data: 'x' }], commit: 0 });
    expect(!notBytes.ok && notBytes.error.message).toContain('message.entries.0.data');
  });

  it('a config entry that does not decode is refused at the boundary', () => {
    const entry = { index: 1, epoch: 1, kind: 'config', data: bytes('{"voters":1}') };
    const result = raftFactory.parseMessage({ type: 'append', from: '1', to: '2', epoch: 1, previousIndex: 0, previousTerm: 0, entries: [entry], commit: 0 });
    expect(!result.ok && result.error.message).toContain('message.entries.0.data');
  });

  it('an unknown message type and an oversized request id are refused', () => {
    expect(raftFactory.parseMessage({ type: 'gossip', from: '1', to: '2', epoch: 1 }).ok).toBe(false);
    expect(raftFactory.parseMessage({ type: 'read-index', from: '1', to: '2', epoch: 1, requestId: 'x'.repeat(129) }).ok).toBe(false);
  });
});

// ---------------------------------------------------------------------------

const options = (id: string, overrides: Partial<EngineOptions> = {}) => engineOptionsFor(id, overrides);

function restored(term: number, vote: string | null, terms: readonly number[]): RestoredState {
  const entries: Entry[] = terms.map((entryTerm, position) => ({ index: position + 1, epoch: entryTerm, kind: 'normal', data: bytes('x') }));
  return { hardState: { term, vote, commit: 0 }, snapshot: null, entries };
}

