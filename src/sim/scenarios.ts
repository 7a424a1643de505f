/**
 * Scenario families: which faults a seed draws, and when. The schedule is
 * drawn up front from the seed; a fault's victims (which node, the current
 * leader...) are chosen when it fires, from the same seeded generator, so a
 * seed still replays exactly.
 */
import type { SeededRandom } from '../shared/random';
import type { NetworkProfile } from './network';

export const scenarioFamilies = ['steady', 'partitions', 'crashes', 'membership'] as const;
export type ScenarioFamily = (typeof scenarioFamilies)[number];

export type FaultAction =
  /** Splits the nodes into two random groups, both ways. */
  | { readonly type: 'partition-random' }
  /** Cuts the current leader off from everyone. */
  | { readonly type: 'isolate-leader' }
  /** One node can still hear the others but its own messages are lost (or the reverse). */
  | { readonly type: 'partition-one-way' }
  | { readonly type: 'heal' }
  | { readonly type: 'crash'; readonly target: 'leader' | 'any'; readonly downMs: number }
  /** Proposes a random membership change through the current leader. */
  | { readonly type: 'membership-change' };

export interface ScheduledFault {
  readonly atMs: number;
  readonly action: FaultAction;
}

export interface Scenario {
  readonly network: NetworkProfile;
  readonly faults: readonly ScheduledFault[];
  /** Spare nodes started empty, for membership changes to add. */
  readonly spareNodes: number;
}

/** Faults at most this often, so that the cluster gets moments to make progress between them. */
const faultGapMsMin = 60;

function lossyProfile(random: SeededRandom, lossMax: number, duplicateMax: number): NetworkProfile {
  return {
    delayMsMin: 1,
    delayMsMax: random.int(2, 8),
    slowProbability: random.next() * 0.08,
    slowDelayMsMax: random.int(20, 60),
    lossProbability: random.next() * lossMax,
    duplicateProbability: random.next() * duplicateMax,
  };
}

/** Fault times from `startMs` to `endMs`, each gap drawn in [gapMsMin, gapMsMax]. */
function faultTimes(random: SeededRandom, startMs: number, endMs: number, gapMsMin: number, gapMsMax: number): number[] {
  const times: number[] = [];
  for (let atMs = startMs + random.int(gapMsMin, gapMsMax); atMs < endMs; atMs += random.int(gapMsMin, gapMsMax)) times.push(atMs);
  return times;
}

function partitionsScenario(random: SeededRandom, durationMs: number): Scenario {
  const faults: ScheduledFault[] = [];
  for (const atMs of faultTimes(random, 0, durationMs, faultGapMsMin * 2, 500)) {
    const roll = random.next();
    if (roll < 0.35) faults.push({ atMs, action: { type: 'heal' } });
    else if (roll < 0.6) faults.push({ atMs, action: { type: 'partition-random' } });
    else if (roll < 0.8) faults.push({ atMs, action: { type: 'isolate-leader' } });
    else faults.push({ atMs, action: { type: 'partition-one-way' } });
  }
  return { network: lossyProfile(random, 0.05, 0.05), faults, spareNodes: 0 };
}

function crashesScenario(random: SeededRandom, durationMs: number): Scenario {
  const faults: ScheduledFault[] = [];
  for (const atMs of faultTimes(random, 0, durationMs, faultGapMsMin, 400)) {
    const target = random.chance(0.5) ? 'leader' : 'any';
    faults.push({ atMs, action: { type: 'crash', target, downMs: random.int(10, 400) } });
    if (random.chance(0.15)) faults.push({ atMs: atMs + random.int(1, 50), action: { type: 'isolate-leader' } });
    if (random.chance(0.15)) faults.push({ atMs: atMs + random.int(50, 150), action: { type: 'heal' } });
  }
  return { network: lossyProfile(random, 0.03, 0.03), faults: sortByTime(faults, durationMs), spareNodes: 0 };
}

function membershipScenario(random: SeededRandom, durationMs: number): Scenario {
  const faults: ScheduledFault[] = [];
  for (const atMs of faultTimes(random, 100, durationMs, faultGapMsMin, 300)) {
    const roll = random.next();
    if (roll < 0.7) faults.push({ atMs, action: { type: 'membership-change' } });
    else if (roll < 0.85) faults.push({ atMs, action: { type: 'crash', target: 'any', downMs: random.int(10, 300) } });
    else faults.push({ atMs, action: random.chance(0.5) ? { type: 'isolate-leader' } : { type: 'heal' } });
  }
  return { network: lossyProfile(random, 0.02, 0.02), faults, spareNodes: 2 };
}

/** In time order, and none after the fault phase: the run then heals everything to settle. */
function sortByTime(faults: ScheduledFault[], durationMs: number): ScheduledFault[] {
  return faults.filter((fault) => fault.atMs < durationMs).sort((left, right) => left.atMs - right.atMs);
}

export function drawScenario(family: ScenarioFamily, random: SeededRandom, durationMs: number): Scenario {
  switch (family) {
    case 'steady':
      return { network: lossyProfile(random, 0, 0), faults: [], spareNodes: 0 };
    case 'partitions':
      return partitionsScenario(random, durationMs);
    case 'crashes':
      return crashesScenario(random, durationMs);
    case 'membership':
      return membershipScenario(random, durationMs);
  }
}
