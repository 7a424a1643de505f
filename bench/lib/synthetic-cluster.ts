import type { NodeStatus } from '../../src/shared/protocol';
import type { ModelMessage } from '../../src/shared/model';
import { createRandom } from '../../src/shared/random';

/**
 * A synthetic cluster for the recorder benchmarks and tests: N nodes reporting
 * at a fixed rate with a steady write load, small random lag and process
 * figures as the agents report them (cpu to 0.1 %), a tick every 500 ms and,
 * now and then, a failover. Deterministic for a seed.
 */
export interface SyntheticOptions {
  nodes: number;
  sampleIntervalMs: number;
  startMs: number;
  seed: number;
  /** Writes per second the leader commits. */
  writesPerSecond?: number;
  /** A failover (leader killed, successor elected) every this often; 0 for none. */
  failoverEveryMs?: number;
}

export function* syntheticMessages(options: SyntheticOptions, durationMs: number): Generator<ModelMessage> {
  const random = createRandom(options.seed);
  const ids = Array.from({ length: options.nodes }, (_, index) => `n${index + 1}`);
  const writesPerSecond = options.writesPerSecond ?? 200;
  const failoverEveryMs = options.failoverEveryMs ?? 0;
  let leader = ids[0] ?? 'n1';
  let epoch = 2;
  let lastIndex = 1_000;
  let nextFailoverMs = failoverEveryMs > 0 ? options.startMs + failoverEveryMs : Number.POSITIVE_INFINITY;
  const matchIndex = new Map(ids.map((id) => [id, lastIndex]));
  const rssBytes = new Map(ids.map((id) => [id, 60_000_000 + random.int(0, 10_000_000)]));
  let nextTickMs = options.startMs;
  let eventSequence = 0;
  const end = options.startMs + durationMs;
  for (let atMs = options.startMs; atMs < end; atMs += options.sampleIntervalMs) {
    if (atMs >= nextTickMs) {
      yield { kind: 'tick', atMs };
      nextTickMs += 500;
    }
    if (atMs >= nextFailoverMs) {
      nextFailoverMs += failoverEveryMs;
      const old = leader;
      leader = ids[(ids.indexOf(leader) + 1) % ids.length] ?? leader;
      epoch += 1;
      eventSequence += 1;
      yield { kind: 'event', event: { id: `${leader}:boot:${eventSequence}`, atMs, nodeId: leader, body: { type: 'election:started', epoch, candidate: leader, preVote: false } } };
      eventSequence += 1;
      yield {
        kind: 'event',
        event: { id: `${leader}:boot:${eventSequence}`, atMs, nodeId: leader, body: { type: 'leader:elected', epoch, leader, previousLeader: old, leaderlessTicks: 10, leaderlessMs: 150 } },
      };
    }
    lastIndex += Math.max(0, Math.round((writesPerSecond * options.sampleIntervalMs) / 1000 + random.int(-2, 2)));
    for (const id of ids) {
      if (id === leader) matchIndex.set(id, lastIndex);
      else matchIndex.set(id, Math.max(matchIndex.get(id) ?? 0, lastIndex - random.int(0, 7)));
      rssBytes.set(id, (rssBytes.get(id) ?? 0) + random.int(-1, 1) * 4096);
    }
    const commitIndex = lastIndex - random.int(0, 2);
    for (const id of ids) {
      const isLeader = id === leader;
      const own = matchIndex.get(id) ?? 0;
      const status: NodeStatus = {
        nodeId: id,
        clusterId: 'synthetic',
        engine: 'raft',
        role: isLeader ? 'leader' : 'follower',
        epoch,
        epochLabel: `term ${epoch}`,
        leader,
        lastIndex: own,
        commitIndex: Math.min(commitIndex, own),
        appliedIndex: Math.min(commitIndex, own),
        voters: ids,
        learners: [],
        followers: isLeader
          ? ids
              .filter((other) => other !== id)
              .map((other) => {
                const match = matchIndex.get(other) ?? 0;
                const lagEntries = lastIndex - match;
                return {
                  nodeId: other,
                  voter: true,
                  state: 'replicate' as const,
                  matchIndex: match,
                  nextIndex: match + 1,
                  lagEntries,
                  lagMs: lagEntries === 0 ? 0 : 5 + random.int(0, 40),
                  lastContactMs: random.int(0, 60),
                };
              })
          : [],
        transferringTo: null,
        integrity: { bytesScrubbed: Math.floor((atMs - options.startMs) / 1000) * 65_536, lastScrubAtMs: null, scrubInProgress: false, corruptionsFound: 0, corruptionsRepaired: 0, parity: 'ok', serving: true, reason: null },
        storage: { segments: 1 + Math.floor(own / 100_000), walBytes: own * 120, snapshotIndex: Math.floor(own / 10_000) * 10_000, fsyncP99Ms: 2 },
        process: { pid: 1000 + ids.indexOf(id), rssBytes: rssBytes.get(id) ?? 0, cpuPercent: random.int(0, 400) / 10, uptimeMs: atMs - options.startMs + 60_000 },
        drillsAllowed: false,
        activeDrills: [],
      };
      yield { kind: 'sample', sample: { atMs, status } };
    }
  }
}
