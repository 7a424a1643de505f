/**
 * Safety invariants checked after every simulator step (Raft §5.2–5.4, stated
 * in engine-neutral terms so Paxos and Zab are held to the same ones):
 *
 * - election safety: at most one leader per epoch, over the whole run;
 * - log matching: two entries with the same index and epoch carry the same
 *   command and follow entries of the same epoch (checked inductively, as a
 *   global map from (index, epoch) to what was ever persisted there);
 * - leader completeness: an entry committed in epoch T is in the log of every
 *   leader of an epoch after T; and, for engines that elect by Raft's
 *   up-to-date rule (§5.4.1), no voter lacking a committed entry has a log at
 *   least as up-to-date as a quorum's, so none could ever be elected (this
 *   catches an unsafe commit the moment it happens, not only once a crash
 *   lets the wrong node win);
 * - state machine safety: no two nodes commit or apply different entries at
 *   one index;
 * - commit monotonicity: a node's commit index never decreases while it runs;
 *   after a restart it may restart lower (only what was persisted survives)
 *   but never below its snapshot, which holds committed state.
 *
 * The monitor only sees observations, so tests drive it with crafted states.
 */
import { xxh32 } from '@node-rs/xxhash';
import type { Entry, EntryKind } from '../agent/consensus/engine';
import type { NodeId, Role } from '../shared/protocol';

export type InvariantName =
  | 'election-safety'
  | 'log-matching'
  | 'leader-completeness'
  | 'state-machine-safety'
  | 'commit-monotonic';

export interface InvariantViolation {
  readonly invariant: InvariantName;
  readonly message: string;
}

/** What identifies an entry's content: equal fingerprints mean equal entries. */
export interface EntryFingerprint {
  readonly index: number;
  readonly epoch: number;
  readonly digest: number;
}

/** A node's stored log as the monitor needs to see it. */
export interface LogView {
  readonly snapshotIndex: number;
  readonly snapshotEpoch: number;
  readonly lastIndex: number;
  readonly lastEpoch: number;
  /** Null when the entry is compacted or absent. */
  fingerprintAt(index: number): EntryFingerprint | null;
}

export interface StatusObservation {
  readonly role: Role;
  readonly epoch: number;
  readonly commitIndex: number;
}

const kindSeeds: Record<EntryKind, number> = { normal: 1, noop: 2, config: 3 };

export function fingerprintOf(entry: Entry): EntryFingerprint {
  return { index: entry.index, epoch: entry.epoch, digest: xxh32(entry.data, kindSeeds[entry.kind]) };
}

interface CommittedEntry {
  readonly epoch: number;
  readonly digest: number;
  /** The lowest epoch at which any node was seen to hold it committed: the epoch it was committed in, or later. */
  commitEpoch: number;
  readonly firstSeenBy: NodeId;
}

interface PersistedIdentity {
  readonly digest: number;
  /** Epoch of the entry before it in the log that stored it; null when that entry was not known. */
  readonly previousEpoch: number | null;
  readonly node: NodeId;
}

interface NodeWatermark {
  commitIndex: number;
  /** False until the first status after a (re)start, which may restart lower. */
  started: boolean;
  appliedIndex: number;
}

export interface SafetyMonitorOptions {
  /**
   * The voters, when the engine elects by Raft's up-to-date rule and the
   * membership is fixed; null turns the electability check off.
   */
  readonly upToDateRuleVoters: readonly NodeId[] | null;
}

/** Raft §5.4.1: is log `left` at least as up-to-date as log `right`? */
export function isAtLeastAsUpToDate(left: LogView, right: LogView): boolean {
  return left.lastEpoch > right.lastEpoch || (left.lastEpoch === right.lastEpoch && left.lastIndex >= right.lastIndex);
}

export class SafetyMonitor {
  private readonly leadersByEpoch = new Map<number, NodeId>();
  private readonly currentLeaders = new Map<NodeId, number>();
  private readonly identities = new Map<string, PersistedIdentity>();
  private readonly committed = new Map<number, CommittedEntry>();
  private readonly watermarks = new Map<NodeId, NodeWatermark>();

  constructor(
    private readonly logOf: (node: NodeId) => LogView,
    private readonly options: SafetyMonitorOptions = { upToDateRuleVoters: null },
  ) {}

  get committedCount(): number {
    return this.committed.size;
  }

  get leaderEpochs(): number {
    return this.leadersByEpoch.size;
  }

  /** Log matching, for entries a node just persisted. */
  recordPersisted(node: NodeId, entries: readonly Entry[]): InvariantViolation | null {
    const log = this.logOf(node);
    for (const entry of entries) {
      const fingerprint = fingerprintOf(entry);
      const previousEpoch = entry.index - 1 === log.snapshotIndex ? log.snapshotEpoch : (log.fingerprintAt(entry.index - 1)?.epoch ?? null);
      const identityKey = `${entry.index}:${entry.epoch}`;
      const seen = this.identities.get(identityKey);
      if (seen === undefined) {
        this.identities.set(identityKey, { digest: fingerprint.digest, previousEpoch, node });
        continue;
      }
      if (seen.digest !== fingerprint.digest) {
        return {
          invariant: 'log-matching',
          message: `${node} and ${seen.node} hold different entries at index ${entry.index} with the same epoch ${entry.epoch}`,
        };
      }
      if (seen.previousEpoch !== null && previousEpoch !== null && seen.previousEpoch !== previousEpoch) {
        return {
          invariant: 'log-matching',
          message:
            `${node} and ${seen.node} agree at index ${entry.index} epoch ${entry.epoch} but differ before it ` +
            `(epoch ${previousEpoch} vs ${seen.previousEpoch} at index ${entry.index - 1})`,
        };
      }
    }
    return null;
  }

  /** Election safety, commit monotonicity, leader completeness, and commits as they are seen. */
  recordStatus(node: NodeId, status: StatusObservation): InvariantViolation | null {
    return (
      this.checkElectionSafety(node, status) ??
      this.checkCommitMonotonic(node, status) ??
      this.recordCommits(node, status) ??
      this.checkNewLeader(node, status)
    );
  }

  /** State machine safety for an entry a node applied. */
  recordApplied(node: NodeId, entry: Entry, epoch: number): InvariantViolation | null {
    const watermark = this.watermarkOf(node);
    if (entry.index <= watermark.appliedIndex) {
      return {
        invariant: 'state-machine-safety',
        message: `${node} applied index ${entry.index} after ${watermark.appliedIndex}; entries must be applied once, in order`,
      };
    }
    watermark.appliedIndex = entry.index;
    return this.markCommitted(node, fingerprintOf(entry), epoch);
  }

  /** A node restarted from storage, or installed a snapshot: its applied index starts again there. */
  recordStateMachineReset(node: NodeId, appliedIndex: number): void {
    this.watermarkOf(node).appliedIndex = appliedIndex;
  }

  recordCrash(node: NodeId): void {
    this.currentLeaders.delete(node);
    const watermark = this.watermarkOf(node);
    watermark.started = false;
  }

  private watermarkOf(node: NodeId): NodeWatermark {
    let watermark = this.watermarks.get(node);
    if (watermark === undefined) {
      watermark = { commitIndex: 0, started: false, appliedIndex: 0 };
      this.watermarks.set(node, watermark);
    }
    return watermark;
  }

  private checkElectionSafety(node: NodeId, status: StatusObservation): InvariantViolation | null {
    if (status.role !== 'leader') {
      this.currentLeaders.delete(node);
      return null;
    }
    const leader = this.leadersByEpoch.get(status.epoch);
    if (leader !== undefined && leader !== node) {
      return { invariant: 'election-safety', message: `${leader} and ${node} were both leader in epoch ${status.epoch}` };
    }
    this.leadersByEpoch.set(status.epoch, node);
    return null;
  }

  private checkCommitMonotonic(node: NodeId, status: StatusObservation): InvariantViolation | null {
    const watermark = this.watermarkOf(node);
    if (!watermark.started) {
      watermark.started = true;
      // Everything the restarted node calls committed is checked again below.
      watermark.commitIndex = 0;
      const { snapshotIndex } = this.logOf(node);
      if (status.commitIndex < snapshotIndex) {
        return {
          invariant: 'commit-monotonic',
          message: `${node} started with commit index ${status.commitIndex} below its snapshot at ${snapshotIndex}`,
        };
      }
      return null;
    }
    if (status.commitIndex < watermark.commitIndex) {
      return {
        invariant: 'commit-monotonic',
        message: `${node} commit index went back from ${watermark.commitIndex} to ${status.commitIndex}`,
      };
    }
    return null;
  }

  /** Entries up to a node's commit index that it still stores are committed; they must agree with every other commit. */
  private recordCommits(node: NodeId, status: StatusObservation): InvariantViolation | null {
    const watermark = this.watermarkOf(node);
    const log = this.logOf(node);
    const from = Math.max(log.snapshotIndex, watermark.commitIndex) + 1;
    for (let index = from; index <= status.commitIndex; index += 1) {
      const fingerprint = log.fingerprintAt(index);
      if (fingerprint === null) continue;
      const violation = this.markCommitted(node, fingerprint, status.epoch);
      if (violation !== null) return violation;
    }
    watermark.commitIndex = status.commitIndex;
    return null;
  }

  private markCommitted(node: NodeId, fingerprint: EntryFingerprint, epoch: number): InvariantViolation | null {
    const known = this.committed.get(fingerprint.index);
    if (known === undefined) {
      this.committed.set(fingerprint.index, {
        epoch: fingerprint.epoch,
        digest: fingerprint.digest,
        commitEpoch: epoch,
        firstSeenBy: node,
      });
      return this.checkLeadersHold(fingerprint.index) ?? this.checkNoElectableVoterLacks(fingerprint.index);
    }
    if (known.epoch !== fingerprint.epoch || known.digest !== fingerprint.digest) {
      return {
        invariant: 'state-machine-safety',
        message:
          `index ${fingerprint.index} committed as epoch ${known.epoch} (seen by ${known.firstSeenBy}) ` +
          `but ${node} commits epoch ${fingerprint.epoch}${known.epoch === fingerprint.epoch ? ' with different data' : ''}`,
      };
    }
    if (epoch < known.commitEpoch) known.commitEpoch = epoch;
    return null;
  }

  private checkNewLeader(node: NodeId, status: StatusObservation): InvariantViolation | null {
    if (status.role !== 'leader' || this.currentLeaders.get(node) === status.epoch) return null;
    this.currentLeaders.set(node, status.epoch);
    for (const index of this.committed.keys()) {
      const violation = this.checkLeaderHolds(node, status.epoch, index);
      if (violation !== null) return violation;
    }
    return null;
  }

  /** A newly committed entry must already be in every current leader of a later epoch. */
  private checkLeadersHold(index: number): InvariantViolation | null {
    for (const [leader, epoch] of this.currentLeaders) {
      const violation = this.checkLeaderHolds(leader, epoch, index);
      if (violation !== null) return violation;
    }
    return null;
  }

  private holds(log: LogView, index: number, committed: CommittedEntry): boolean {
    if (index <= log.snapshotIndex) return true;
    const held = log.fingerprintAt(index);
    return held !== null && held.epoch === committed.epoch && held.digest === committed.digest;
  }

  /** A voter without the entry that a quorum would vote for (by their stored logs) could overwrite it. */
  private checkNoElectableVoterLacks(index: number): InvariantViolation | null {
    const voters = this.options.upToDateRuleVoters;
    const committed = this.committed.get(index);
    if (voters === null || committed === undefined) return null;
    const quorum = Math.floor(voters.length / 2) + 1;
    for (const candidate of voters) {
      const candidateLog = this.logOf(candidate);
      if (this.holds(candidateLog, index, committed)) continue;
      const electors = voters.filter((voter) => isAtLeastAsUpToDate(candidateLog, this.logOf(voter)));
      if (electors.length >= quorum) {
        return {
          invariant: 'leader-completeness',
          message:
            `index ${index} (epoch ${committed.epoch}) is committed but ${candidate}, which lacks it, ` +
            `could be elected by ${electors.join(', ')} (its last entry: index ${candidateLog.lastIndex} epoch ${candidateLog.lastEpoch})`,
        };
      }
    }
    return null;
  }

  private checkLeaderHolds(leader: NodeId, leaderEpoch: number, index: number): InvariantViolation | null {
    const committed = this.committed.get(index);
    if (committed === undefined || committed.commitEpoch >= leaderEpoch) return null;
    const log = this.logOf(leader);
    if (index <= log.snapshotIndex) return null;
    const held = log.fingerprintAt(index);
    if (held !== null && held.epoch === committed.epoch && held.digest === committed.digest) return null;
    return {
      invariant: 'leader-completeness',
      message:
        `${leader} leads epoch ${leaderEpoch} without the entry committed at index ${index} ` +
        `(epoch ${committed.epoch}, committed by epoch ${committed.commitEpoch}); it holds ` +
        (held === null ? 'nothing there' : `epoch ${held.epoch}${held.epoch === committed.epoch ? ' with different data' : ''}`),
    };
  }
}
