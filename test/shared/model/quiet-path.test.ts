import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createClusterModel, reduce, reduceFully, type ClusterModel, type ModelMessage } from '../../../src/shared/model';
import type { IntegrityStatus, NodeStatus } from '../../../src/shared/protocol';
import { clusterSamples, event, nodeIds, progress, sample, status, steady, tick } from './fixtures';

/**
 * `reduce` takes a shortcut for quiet messages (a follower reporting the same
 * facts, a tick that expires nothing). These properties feed random streams,
 * rich in exactly the changes the shortcut must notice, through `reduce` and
 * through `reduceFully` (no shortcut) and require the same model after every
 * message.
 */

const voterCount = 5;
const voters = nodeIds(voterCount);
/** Time steps: within a batch, a sample interval, past a lag bucket, past staleness, past unreachability, past the lag window. */
const stepsMs = [0, 0, 0, 7, 100, 100, 250, 600, 3_500, 11_000, 320_000];

type Step =
  | { type: 'round'; stepIndex: number; skip: number; lag: number; leaderMoves: boolean; oddNode: number; oddity: number }
  | { type: 'single'; stepIndex: number; node: number; oddity: number; lag: number }
  | { type: 'tick'; stepIndex: number }
  | { type: 'link'; node: number; state: number }
  | { type: 'event'; node: number; kind: number }
  | { type: 'operator'; node: number; kind: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ type: fc.constant('round' as const), stepIndex: fc.nat(stepsMs.length - 1), skip: fc.nat(voterCount * 3), lag: fc.nat(3_000), leaderMoves: fc.boolean(), oddNode: fc.nat(voterCount - 1), oddity: fc.nat(14) }), weight: 6 },
  { arbitrary: fc.record({ type: fc.constant('single' as const), stepIndex: fc.nat(stepsMs.length - 1), node: fc.nat(voterCount - 1), oddity: fc.nat(14), lag: fc.nat(3_000) }), weight: 6 },
  { arbitrary: fc.record({ type: fc.constant('tick' as const), stepIndex: fc.nat(stepsMs.length - 1) }), weight: 3 },
  { arbitrary: fc.record({ type: fc.constant('link' as const), node: fc.nat(voterCount - 1), state: fc.nat(4) }), weight: 1 },
  { arbitrary: fc.record({ type: fc.constant('event' as const), node: fc.nat(voterCount - 1), kind: fc.nat(3) }), weight: 1 },
  { arbitrary: fc.record({ type: fc.constant('operator' as const), node: fc.nat(voterCount - 1), kind: fc.nat(3) }), weight: 1 },
);

const notServing: IntegrityStatus = { bytesScrubbed: 0, lastScrubAtMs: null, scrubInProgress: false, corruptionsFound: 1, corruptionsRepaired: 0, parity: 'ok', serving: false, reason: 'unverified log' };
const notServingOtherwise: IntegrityStatus = { ...notServing, reason: 'parity mismatch' };
const serving: IntegrityStatus = { ...notServing, serving: true, reason: null };

/** Turns abstract steps into messages of one cluster whose leader and epoch move now and then. */
function messagesOf(steps: Step[]): ModelMessage[] {
  const messages: ModelMessage[] = [];
  let atMs = 1_000;
  let leader = 0;
  let epoch = 3;
  let index = 100;
  let eventSequence = 0;
  /** Each node's quirk sticks until a later step changes it, as a real node keeps reporting that it refuses to serve. */
  const quirks = new Array<number>(voterCount).fill(0);
  const nodeStatus = (node: number, lag: number): NodeStatus => {
    const nodeId = voters[node] ?? 'n1';
    const leaderId = voters[leader] ?? 'n1';
    const isLeader = node === leader;
    const base = status(nodeId, {
      role: isLeader ? 'leader' : 'follower',
      leader: leaderId,
      epoch,
      epochLabel: `term ${epoch}`,
      voters,
      lastIndex: index - (isLeader ? 0 : lag % 7),
      commitIndex: index - 1,
      appliedIndex: index - 1,
      followers: isLeader ? voters.filter((id) => id !== nodeId).map((id, position) => progress(id, { lagEntries: (lag * (position + 1)) % 2_500, lagMs: lag % 2_600, lastContactMs: lag % 3_000 })) : [],
    });
    // Most samples are plain; a quirk changes one fact the derivations read.
    switch (quirks[node]) {
      case 1:
        return { ...base, role: 'candidate', leader: null, epoch: epoch + 1, epochLabel: `term ${epoch + 1}` };
      case 2:
        return { ...base, role: 'offline' };
      case 3:
        return { ...base, integrity: notServing };
      case 4:
        return { ...base, integrity: serving };
      case 5:
        return { ...base, voters: voters.slice(0, 3) };
      case 6:
        return { ...base, role: 'leader' };
      case 7:
        return { ...base, epochLabel: `term ${epoch}'` };
      case 8:
        return { ...base, transferringTo: voters[(leader + 1) % voterCount] ?? null, activeDrills: ['pause'] };
      case 9:
        return { ...base, clusterId: 'other' };
      case 11:
        return { ...base, integrity: notServingOtherwise };
      case 12:
        return { ...base, leader: voters[(leader + 1) % voterCount] ?? null };
      case 13:
        return { ...base, epoch: epoch + 1 };
      case 14:
        return { ...base, epoch: epoch - 1, epochLabel: `term ${epoch - 1}` };
      default:
        return base;
    }
  };
  for (const next of steps) {
    switch (next.type) {
      case 'round':
        atMs += stepsMs[next.stepIndex] ?? 0;
        index += 5;
        if (next.leaderMoves && next.lag % 4 === 0) {
          leader = (leader + 1) % voterCount;
          epoch += 1;
        }
        if (next.lag % 3 === 0) quirks[next.oddNode] = next.oddity === 10 ? 0 : next.oddity;
        for (let node = 0; node < voterCount; node += 1) {
          if ((next.skip >> node) % 2 === 1 && next.skip > voterCount) continue;
          messages.push(sample(atMs, nodeStatus(node, next.lag + node)));
        }
        break;
      case 'single':
        atMs += stepsMs[next.stepIndex] ?? 0;
        index += 1;
        if (next.oddity !== 10) quirks[next.node] = next.lag % 2 === 0 ? next.oddity : 0;
        // Now and then an old sample, which must not overwrite a newer status.
        messages.push(sample(next.oddity === 10 ? atMs - 50 : atMs, nodeStatus(next.node, next.lag)));
        break;
      case 'tick':
        atMs += stepsMs[next.stepIndex] ?? 0;
        messages.push(tick(atMs));
        break;
      case 'link': {
        const states = ['connected', 'connecting', 'stale', 'unreachable', 'refused'] as const;
        const nodeId = voters[next.node] ?? 'n1';
        messages.push({ kind: 'link', nodeId, endpoint: `127.0.0.1:${7000 + next.node}`, state: states[next.state] ?? 'connected', atMs });
        break;
      }
      case 'event': {
        const nodeId = voters[next.node] ?? 'n1';
        eventSequence += 1;
        const bodies = [
          { type: 'corruption:detected' as const, kind: 'corruption' as const, file: null, offset: null, index: null, detectedBy: 'scrub' as const, detail: 'bad block' },
          { type: 'corruption:repaired' as const, file: null, index: null, repairedFrom: 'peer' as const, durationMs: 120, detail: 'fixed' },
          { type: 'leader:lost' as const, epoch, leader: voters[leader] ?? 'n1', reason: 'timeout' },
          { type: 'node:joined' as const, node: nodeId },
        ];
        const message = event(atMs, nodeId, bodies[next.kind] ?? { type: 'node:joined', node: nodeId });
        messages.push(message.kind === 'event' ? { ...message, event: { ...message.event, id: `${message.event.id}:${eventSequence}` } } : message);
        break;
      }
      case 'operator': {
        const nodeId = voters[next.node] ?? 'n1';
        if (next.kind === 0) messages.push({ kind: 'operator', action: { type: 'transfer', to: nodeId }, atMs });
        else if (next.kind === 1) messages.push({ kind: 'mute', alertId: `unreachable:${nodeId}`, durationMs: 300, atMs });
        else if (next.kind === 2) messages.push({ kind: 'mute', alertId: 'fault-tolerance', durationMs: 1_200, atMs });
        else messages.push({ kind: 'acknowledge', alertId: `lag:${nodeId}`, atMs });
        break;
      }
    }
  }
  return messages;
}

/** Reduces a stream both ways; the first message after which they differ, or null. */
function firstDivergence(messages: ModelMessage[], from: ClusterModel): { at: number; quick: ClusterModel; full: ClusterModel } | null {
  let quick = from;
  let full = from;
  for (const [at, message] of messages.entries()) {
    quick = reduce(quick, message);
    full = reduceFully(full, message);
    if (JSON.stringify(quick) !== JSON.stringify(full)) return { at, quick, full };
  }
  return null;
}

const fuzzSeed = Number(process.env.QUORUMSCOPE_FUZZ_SEED ?? 20261127);

describe('the quiet-message shortcut of reduce', () => {
  it('gives the same model as the full derivation after every message of a random stream', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 120 }), (steps) => {
        const divergence = firstDivergence(messagesOf(steps), createClusterModel());
        if (divergence !== null) expect(divergence.quick, `after message ${divergence.at}`).toEqual(divergence.full);
      }),
      // A fixed seed: a failure replays; QUORUMSCOPE_FUZZ_SEED explores others.
      { numRuns: 300, seed: fuzzSeed },
    );
  });

  it('gives the same model as the full derivation when thresholds are tight', () => {
    // Short enough that mutes, grace periods, holds and the lag window run out between the samples of a steady cluster.
    const config = { nodeStaleAfterMs: 1_000, nodeUnreachableAfterMs: 3_000, lagHistoryWindowMs: 900, lagHistoryIntervalMs: 100, leaderChangedAlertHoldMs: 700, repairedAlertHoldMs: 500, operatorGraceMs: 800 };
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 120 }), (steps) => {
        const divergence = firstDivergence(messagesOf(steps), createClusterModel(config));
        if (divergence !== null) expect(divergence.quick, `after message ${divergence.at}`).toEqual(divergence.full);
      }),
      { numRuns: 300, seed: fuzzSeed + 1 },
    );
  });

  it('is taken for most samples of a steady cluster (a follower reporting fresher indexes)', () => {
    const messages = messagesOf(Array.from({ length: 50 }, (_, position): Step => ({ type: 'round', stepIndex: 4, skip: 0, lag: position, leaderMoves: false, oddNode: 0, oddity: 0 })));
    let model = createClusterModel();
    let shared = 0;
    for (const message of messages) {
      const next = reduce(model, message);
      // The shortcut shares the derived parts of the model it was given; the full derivation builds a new leader view.
      if (next.leader !== null && next.leader === model.leader) shared += 1;
      model = next;
    }
    expect(shared / messages.length).toBeGreaterThan(0.7);
    expect(model).toEqual(messages.reduce(reduceFully, createClusterModel()));
  });

  const steadyCluster = (): ClusterModel => steady(1_000, 2_000, 100, { voters: voterCount }).reduce(reduce, createClusterModel());
  const follower = (overrides: Partial<NodeStatus>): NodeStatus => status('n3', { voters, ...overrides });
  const refusing: IntegrityStatus = { ...notServing, reason: null };

  it.each([
    ['goes offline', follower({ role: 'offline' })],
    ['claims to lead', follower({ role: 'leader' })],
    ['names another leader', follower({ leader: 'n2' })],
    ['moves to a later epoch', follower({ epoch: 4 })],
    ['states other voters', follower({ voters: voters.slice(0, 3) })],
    ['refuses to serve without a reason', follower({ integrity: refusing })],
  ])('takes the full path when a follower %s', (_change, changed) => {
    const model = steadyCluster();
    expect(reduce(model, sample(2_050, changed))).toEqual(reduceFully(model, sample(2_050, changed)));
  });

  it('takes the full path when a refusing follower gives another reason', () => {
    const model = [sample(2_050, follower({ integrity: notServing }))].reduce(reduce, steadyCluster());
    const changed = sample(2_060, follower({ integrity: notServingOtherwise }));
    expect(reduce(model, changed)).toEqual(reduceFully(model, changed));
  });

  it("takes the full path when an operator's grace period runs out between quiet samples", () => {
    const config = { operatorGraceMs: 300 };
    const drill: ModelMessage = { kind: 'operator', action: { type: 'drill', nodeId: 'n3', drill: 'pause' }, atMs: 2_000 };
    const model = [...steady(1_000, 2_000, 100, { voters: voterCount }), drill].reduce(reduce, createClusterModel(config));
    // Followers first, so that the time the grace period ends arrives with a quiet sample rather than the leader's.
    const later = [2_100, 2_200, 2_300, 2_400].flatMap((atMs) => clusterSamples(atMs, { voters: voterCount }).reverse());
    expect(firstDivergence(later, model)).toBeNull();
    expect(later.reduce(reduceFully, model).operations).toEqual([]);
  });
});
