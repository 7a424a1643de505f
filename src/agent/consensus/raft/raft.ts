/**
 * Raft (Ongaro & Ousterhout 2014; Ongaro's thesis 2014) as a deterministic
 * state machine, after etcd-io/raft: each role is a pair of swapped functions
 * (`stepLeader`/`tickHeartbeat`, `stepCandidate`/`tickElection`,
 * `stepFollower`/`tickElection`), time is an abstract tick, randomness comes
 * from the injected `Random`, and everything the host must do (persist, send,
 * apply) leaves through `ready()`. See README.md for the driver loop.
 */
import type { EventBody, NodeId } from '../../../shared/protocol';
import { err, ok, type Err, type Result } from '../../../shared/protocol';
import type {
  ConsensusEngine,
  EngineOptions,
  EngineStatus,
  Entry,
  Membership,
  MembershipChange,
  ProposeResult,
  Random,
  Ready,
  ReadState,
  RestoredState,
  Snapshot,
} from '../engine';
import { RaftLog } from './log';
import { applyChange, decodeConfigEntry, describeChange, encodeConfigEntry, sameMembership } from './membership';
import {
  entryBytesMax,
  messageEntriesMax,
  requestIdLengthMax,
  type AppendMessage,
  type AppendResponseMessage,
  type HeartbeatMessage,
  type HeartbeatResponseMessage,
  type PreVoteMessage,
  type RaftMessage,
  type ReadIndexMessage,
  type SnapshotMessage,
  type VoteMessage,
} from './messages';
import { ProposalClock, Progress } from './progress';

export type RaftRole = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** ReadIndex requests waiting for their heartbeat round on the leader. */
export const readRequestsMax = 1024;
/** Reads forwarded by followers while the leader has not yet committed an entry of its term. */
export const forwardedReadsMax = 1024;
/** Proposals refused (`overloaded`) once this many entries wait to be committed. */
export const uncommittedEntriesMax = 65_536;
/** Committed entries handed to the host in one Ready; the rest follow in the next. */
export const committedEntriesBytesMax = 16 * 1024 * 1024;
/** Used for `lastContactMs` and `leaderlessMs` when the options give no `tickIntervalMs`. */
export const tickIntervalMsDefault = 100;

type CampaignKind = 'pre-vote' | 'election' | 'transfer';

interface PendingRead {
  readonly requestId: string;
  readonly index: number;
  /** The node that asked: this leader, or a follower that forwarded the request. */
  readonly origin: NodeId;
  /** The heartbeat round that confirms leadership for this read. */
  readonly context: number;
  readonly acknowledgedBy: Set<NodeId>;
}

type RaftHardState = {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
};

/** After handing leadership over, the old leader waits to see who actually leads. */
interface TransferWatch {
  readonly to: NodeId;
}

const emptyData = new Uint8Array(0);
const descending = (a: number, b: number): number => b - a;

export class RaftEngine implements ConsensusEngine<RaftMessage> {
  readonly id: NodeId;
  protected readonly options: EngineOptions;
  private readonly random: Random;
  private readonly tickIntervalMs: number;

  protected term = 0;
  protected vote: NodeId | null = null;
  protected leader: NodeId | null = null;
  protected role: RaftRole = 'follower';
  protected readonly log = new RaftLog();

  /** In effect as soon as its config entry is appended (thesis §4.1). */
  protected membership: Membership;
  /** The config entry in effect; null when the membership comes from the snapshot or the initial one. */
  private configEntry: Entry | null = null;
  /** The membership of the latest snapshot (or the initial one): what remains if every config entry is truncated. */
  private baseMembership: Membership;

  protected readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private electionElapsedTicks = 0;
  private heartbeatElapsedTicks = 0;
  private randomizedElectionTimeoutTicks = 0;
  private ticksSinceLeaderContact = 0;
  private lastKnownLeader: NodeId | null = null;

  private transferee: NodeId | null = null;
  private transferWatch: TransferWatch | null = null;
  /** No new config change until the entry at this index is committed (one server at a time). */
  private pendingConfigIndex = 0;

  private pendingReads: PendingRead[] = [];
  private forwardedReads: { requestId: string; origin: NodeId }[] = [];
  private readContextSequence = 0;

  /** Proposals arrived since the last Ready; appends go out batched when the host asks for a Ready. */
  private appendsPending = false;
  /** The commit index moved; followers learn it with the next appends, even empty ones. */
  private commitBroadcastPending = false;

  private messages: RaftMessage[] = [];
  private events: EventBody[] = [];
  private readStates: ReadState[] = [];
  private incomingSnapshot: Snapshot | null = null;
  /** The latest snapshot this node holds, to send to followers behind the compacted log. */
  private latestSnapshot: Snapshot | null = null;
  private persistedHardState: RaftHardState;
  private readonly proposalClock = new ProposalClock();
  private readonly matchScratch: number[] = [];

  private stepRole: (message: RaftMessage) => void = this.stepFollower;
  private tickRole: () => void = this.tickElection;

  constructor(options: EngineOptions, restored: RestoredState) {
    assertOptions(options);
    this.id = options.id;
    this.options = options;
    this.random = options.random;
    this.tickIntervalMs = options.tickIntervalMs ?? tickIntervalMsDefault;

    const snapshot = restored.snapshot;
    if (snapshot !== null) {
      this.log.restore(snapshot.meta.index, snapshot.meta.epoch);
      this.latestSnapshot = snapshot;
      this.baseMembership = snapshot.meta.membership;
    } else {
      this.baseMembership = options.initialMembership;
    }
    const first = restored.entries[0];
    if (first !== undefined && first.index !== this.log.lastIndex() + 1) {
      throw new Error(`raft: restored entries start at ${first.index}, expected ${this.log.lastIndex() + 1}`);
    }
    this.log.load(restored.entries);
    this.membership = this.baseMembership;
    this.refreshMembership(false);

    const hardState = readHardState(restored.hardState);
    this.term = hardState.term;
    this.vote = hardState.vote;
    const commit = Math.max(hardState.commit, this.log.snapshotIndex);
    if (commit > this.log.lastIndex()) {
      throw new Error(`raft: restored commit ${commit} beyond the last restored index ${this.log.lastIndex()}`);
    }
    this.log.committedIndex = commit;
    this.persistedHardState = { term: this.term, vote: this.vote, commit };
    this.becomeFollower(this.term, null);
  }

  // ---------------------------------------------------------------------------
  // The host's interface.

  tick(): void {
    if (this.role === 'leader') this.ticksSinceLeaderContact = 0;
    else this.ticksSinceLeaderContact += 1;
    this.tickRole();
  }

  step(message: RaftMessage): void {
    if (message.to !== this.id) return;
    if (message.epoch > this.term) {
      if (!this.stepHigherTerm(message)) return;
    } else if (message.epoch < this.term) {
      this.stepLowerTerm(message);
      return;
    }
    switch (message.type) {
      case 'vote':
      case 'pre-vote':
        this.handleVoteRequest(message);
        return;
      default:
        this.stepRole(message);
    }
  }

  propose(data: Uint8Array, nowMs: number): ProposeResult {
    const refusal = this.checkCanAppend();
    if (refusal !== null) return refusal;
    if (data.byteLength > entryBytesMax) return err('entry_too_large', `an entry holds at most ${entryBytesMax} bytes`);
    const entry: Entry = { index: this.log.lastIndex() + 1, epoch: this.term, kind: 'normal', data };
    this.appendLocal(entry);
    this.proposalClock.record(entry.index, nowMs);
    return ok({ index: entry.index, epoch: entry.epoch });
  }

  readIndex(requestId: string): Result<null> {
    if (requestId.length === 0 || requestId.length > requestIdLengthMax) {
      return err('invalid_request', `a read request id has 1 to ${requestIdLengthMax} characters`);
    }
    if (this.role === 'leader') {
      if (!this.committedInCurrentTerm()) {
        return err('not_ready', `leader ${this.id} has not yet committed an entry of term ${this.term} (Raft thesis §6.4)`);
      }
      return this.startRead(requestId, this.id);
    }
    if (this.role !== 'follower' || this.leader === null) {
      return err('no_leader', `node ${this.id} knows no leader in term ${this.term}`);
    }
    this.send<ReadIndexMessage>({ type: 'read-index', from: this.id, to: this.leader, epoch: this.term, requestId });
    return ok(null);
  }

  transferLeadership(target: NodeId): Result<null> {
    const refusal = this.checkTransferTarget(target);
    if (refusal !== null) {
      this.emit({ type: 'transfer:refused', epoch: this.term, to: target, code: refusal.error.code, reason: refusal.error.message });
      return refusal;
    }
    if (this.transferee === target) return ok(null);
    if (this.transferee !== null) this.abortTransfer(`superseded by a transfer to ${target}`);
    this.transferee = target;
    // The transfer gets one election timeout to complete (thesis §3.10).
    this.electionElapsedTicks = 0;
    this.emit({ type: 'transfer:requested', epoch: this.term, from: this.id, to: target });
    const progress = this.progress.get(target) as Progress;
    if (progress.matchIndex === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.maybeSendAppend(target, true);
    return ok(null);
  }

  changeMembership(change: MembershipChange): ProposeResult {
    const refusal = this.checkCanAppend();
    if (refusal !== null) return refusal;
    if (this.pendingConfigIndex > this.log.committedIndex) {
      return err(
        'change_in_progress',
        `the membership change at index ${this.pendingConfigIndex} is not yet committed; one server at a time (Raft thesis §4.1)`,
      );
    }
    const next = applyChange(this.membership, change);
    if (!next.ok) return next;
    const text = describeChange(change);
    const entry: Entry = {
      index: this.log.lastIndex() + 1,
      epoch: this.term,
      kind: 'config',
      data: encodeConfigEntry(next.data, text),
    };
    this.appendLocal(entry);
    this.pendingConfigIndex = entry.index;
    this.setMembership(next.data, entry, text);
    return ok({ index: entry.index, epoch: entry.epoch });
  }

  compact(snapshot: Snapshot): Result<null> {
    const { index, epoch } = snapshot.meta;
    if (index <= this.log.snapshotIndex) {
      return err('already_compacted', `the log is already compacted through ${this.log.snapshotIndex}`);
    }
    if (index > this.log.appliedIndex) {
      return err('not_applied', `index ${index} is not applied yet (applied ${this.log.appliedIndex})`);
    }
    if (this.log.termAt(index) !== epoch) {
      return err('term_mismatch', `entry ${index} has term ${this.log.termAt(index)}, the snapshot says ${epoch}`);
    }
    const membership = this.membershipAt(index);
    if (!sameMembership(membership, snapshot.meta.membership)) {
      return err('membership_mismatch', `the membership at index ${index} differs from the snapshot's`);
    }
    this.log.compact(index, epoch);
    this.latestSnapshot = snapshot;
    this.baseMembership = membership;
    return ok(null);
  }

  hasReady(): boolean {
    return (
      this.appendsPending ||
      this.commitBroadcastPending ||
      this.messages.length > 0 ||
      this.events.length > 0 ||
      this.readStates.length > 0 ||
      this.incomingSnapshot !== null ||
      this.log.unstableFromIndex <= this.log.lastIndex() ||
      this.log.hasNextCommittedEntries() ||
      this.hardStateChanged()
    );
  }

  ready(): Ready<RaftMessage> {
    this.flushAppends();
    let hardState: RaftHardState | null = null;
    let hardStateMustPersist = false;
    if (this.hardStateChanged()) {
      hardState = { term: this.term, vote: this.vote, commit: this.log.committedIndex };
      // The commit index is volatile (Raft §5.3): a node that restarts with an older one learns it again.
      hardStateMustPersist = this.persistedHardState.term !== this.term || this.persistedHardState.vote !== this.vote;
      this.persistedHardState = hardState;
    }
    const committedEntries = this.log.nextCommittedEntries(committedEntriesBytesMax);
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted !== undefined) this.log.applyingIndex = lastCommitted.index;
    const ready: Ready<RaftMessage> = {
      hardState,
      hardStateMustPersist,
      entries: this.log.unstableEntries(),
      snapshot: this.incomingSnapshot,
      messages: this.messages,
      committedEntries,
      readStates: this.readStates,
      events: this.events,
    };
    this.incomingSnapshot = null;
    this.messages = [];
    this.readStates = [];
    this.events = [];
    return ready;
  }

  advance(ready: Ready<RaftMessage>): void {
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.epoch);
    const lastCommitted = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastCommitted !== undefined && lastCommitted.index > this.log.appliedIndex) {
      this.log.appliedIndex = lastCommitted.index;
    }
  }

  status(nowMs: number): EngineStatus {
    const lastIndex = this.log.lastIndex();
    const followers = [];
    if (this.role === 'leader') {
      for (const progress of this.progress.values()) {
        if (progress.nodeId === this.id) continue;
        followers.push({
          nodeId: progress.nodeId,
          voter: progress.voter,
          state: progress.state,
          matchIndex: progress.matchIndex,
          nextIndex: progress.nextIndex,
          lagEntries: lastIndex - progress.matchIndex,
          lagMs: this.proposalClock.oldestUnacknowledgedAgeMs(progress.matchIndex, lastIndex, nowMs),
          lastContactMs: progress.ticksSinceContact === null ? null : progress.ticksSinceContact * this.tickIntervalMs,
        });
      }
    }
    return {
      role: this.reportedRole(),
      epoch: this.term,
      epochLabel: `term ${this.term}`,
      leader: this.leader,
      lastIndex,
      commitIndex: this.log.committedIndex,
      appliedIndex: this.log.appliedIndex,
      voters: [...this.membership.voters],
      learners: [...this.membership.learners],
      followers,
      transferringTo: this.transferee,
    };
  }

  /** Starts an election now, as if the election timeout had elapsed (with PreVote when enabled). */
  campaign(): void {
    this.hup(this.options.preVote ? 'pre-vote' : 'election');
  }

  /** The Raft role, finer than the engine-neutral one (it tells a pre-candidate apart). */
  raftRole(): RaftRole {
    return this.role;
  }

  // ---------------------------------------------------------------------------
  // Extension points: the simulator's tests subclass these to build broken variants.

  /** §5.4.1: grant a vote only to a candidate whose log is at least as up-to-date as ours. */
  protected candidateLogIsUpToDate(candidateLastIndex: number, candidateLastTerm: number): boolean {
    const lastTerm = this.log.lastTerm();
    return candidateLastTerm > lastTerm || (candidateLastTerm === lastTerm && candidateLastIndex >= this.log.lastIndex());
  }

  /**
   * What the leader may set its commit index to: the highest index a quorum of
   * voters stores, but only if that entry is of the current term (§5.4.2); an
   * entry of an earlier term is committed only indirectly, by a later one.
   */
  protected commitIndexByQuorum(): number {
    const matches = this.matchScratch;
    matches.length = 0;
    for (const voter of this.membership.voters) {
      matches.push(voter === this.id ? this.log.lastIndex() : (this.progress.get(voter)?.matchIndex ?? 0));
    }
    if (matches.length === 0) return this.log.committedIndex;
    matches.sort(descending);
    const quorumIndex = matches[this.quorum() - 1] as number;
    if (quorumIndex > this.log.committedIndex && this.log.termAt(quorumIndex) === this.term) return quorumIndex;
    return this.log.committedIndex;
  }

  // ---------------------------------------------------------------------------
  // Role transitions.

  private becomeFollower(term: number, leader: NodeId | null): void {
    const wasLeader = this.role === 'leader';
    this.resetTerm(term);
    this.role = 'follower';
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    if (wasLeader) this.leaveLeadership();
    this.setLeader(leader);
  }

  private becomePreCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: a leader cannot become a pre-candidate');
    // A pre-candidate changes neither its term nor its vote (thesis §9.6).
    this.role = 'pre-candidate';
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.votes.clear();
    this.setLeader(null);
  }

  private becomeCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: a leader cannot become a candidate');
    this.resetTerm(this.term + 1);
    this.role = 'candidate';
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.vote = this.id;
    this.setLeader(null);
  }

  private becomeLeader(): void {
    if (this.role !== 'candidate') throw new Error(`raft: a ${this.role} cannot become leader`);
    const previousLeader = this.lastKnownLeader;
    const leaderlessTicks = this.ticksSinceLeaderContact;
    this.resetTerm(this.term);
    this.role = 'leader';
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    this.setLeader(this.id);
    this.resetProgress();
    this.proposalClock.clear();
    // A new leader does not know which config entries are committed; it changes
    // membership only after an entry of its own term commits (thesis §4.1).
    this.pendingConfigIndex = this.log.lastIndex();
    this.emit({
      type: 'leader:elected',
      epoch: this.term,
      leader: this.id,
      previousLeader,
      leaderlessTicks,
      leaderlessMs: leaderlessTicks * this.tickIntervalMs,
    });
    // The no-op of the new term lets earlier entries commit (§5.4.2, §8).
    this.appendLocal({ index: this.log.lastIndex() + 1, epoch: this.term, kind: 'noop', data: emptyData });
  }

  private leaveLeadership(): void {
    if (this.transferee !== null) this.abortTransfer('the leader stepped down');
    this.progress.clear();
    this.pendingReads = [];
    this.forwardedReads = [];
    this.appendsPending = false;
    this.commitBroadcastPending = false;
  }

  /** Steps down from leadership in the same term, e.g. on a lost quorum or after removal. */
  private stepDown(reason: string): void {
    this.emit({ type: 'leader:lost', epoch: this.term, leader: this.id, reason });
    this.becomeFollower(this.term, null);
  }

  private resetTerm(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = null;
    }
    this.electionElapsedTicks = 0;
    this.heartbeatElapsedTicks = 0;
    this.votes.clear();
    this.randomizedElectionTimeoutTicks = this.random.int(
      this.options.electionTimeoutTicks,
      2 * this.options.electionTimeoutTicks - 1,
    );
  }

  private resetProgress(): void {
    this.progress.clear();
    const nextIndex = this.log.lastIndex() + 1;
    const add = (node: NodeId, voter: boolean): void => {
      const progress = new Progress(node, voter, nextIndex, this.options.inflightAppendsMax);
      if (node === this.id) {
        progress.matchIndex = this.log.lastIndex();
        progress.recentActive = true;
        progress.ticksSinceContact = 0;
      }
      this.progress.set(node, progress);
    };
    for (const voter of this.membership.voters) add(voter, true);
    for (const learner of this.membership.learners) add(learner, false);
    if (!this.progress.has(this.id)) add(this.id, false);
  }

  private setLeader(leader: NodeId | null): void {
    if (leader !== null && leader !== this.leader) {
      this.lastKnownLeader = leader;
      this.resolveTransferWatch(leader);
    }
    this.leader = leader;
  }

  // ---------------------------------------------------------------------------
  // Ticks.

  private tickElection(): void {
    this.electionElapsedTicks += 1;
    if (this.isPromotable() && this.electionElapsedTicks >= this.randomizedElectionTimeoutTicks) {
      this.electionElapsedTicks = 0;
      this.hup(this.options.preVote ? 'pre-vote' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsedTicks += 1;
    this.electionElapsedTicks += 1;
    for (const progress of this.progress.values()) {
      if (progress.nodeId === this.id) continue;
      if (progress.ticksSinceContact !== null) progress.ticksSinceContact += 1;
      if (progress.state === 'snapshot') progress.snapshotTicks += 1;
    }
    if (this.electionElapsedTicks >= this.options.electionTimeoutTicks) {
      this.electionElapsedTicks = 0;
      // CheckQuorum (thesis §6.2): a leader cut off from a quorum steps down
      // instead of serving stale reads and accepting doomed proposals.
      if (this.options.checkQuorum && !this.quorumRecentlyActive()) {
        this.stepDown('did not hear from a quorum within an election timeout (CheckQuorum)');
        return;
      }
      if (this.transferee !== null) {
        this.abortTransfer(`${this.transferee} did not take over within an election timeout`);
      }
    }
    if (this.heartbeatElapsedTicks >= this.options.heartbeatIntervalTicks) {
      this.heartbeatElapsedTicks = 0;
      const lastRead = this.pendingReads[this.pendingReads.length - 1];
      this.broadcastHeartbeat(lastRead === undefined ? 0 : lastRead.context);
    }
  }

  /** Counts and resets who was heard from since the last check; this node counts if it votes. */
  private quorumRecentlyActive(): boolean {
    let active = 0;
    for (const progress of this.progress.values()) {
      if (progress.nodeId === this.id) {
        if (progress.voter) active += 1;
        continue;
      }
      if (progress.voter && progress.recentActive) active += 1;
      progress.recentActive = false;
    }
    return active >= this.quorum();
  }

  // ---------------------------------------------------------------------------
  // Elections.

  private hup(kind: CampaignKind): void {
    if (this.role === 'leader' || !this.isPromotable()) return;
    if (this.transferWatch !== null) {
      this.emitTransferOutcome(this.transferWatch, null, 'no leader was elected within an election timeout');
      this.transferWatch = null;
    }
    const preVote = kind === 'pre-vote';
    if (preVote) this.becomePreCandidate();
    else this.becomeCandidate();
    const voteTerm = preVote ? this.term + 1 : this.term;
    this.emit({ type: 'election:started', epoch: voteTerm, candidate: this.id, preVote });
    this.votes.set(this.id, true);
    if (this.tallyVotes() === 'won') {
      this.winVote();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const voter of this.membership.voters) {
      if (voter === this.id) continue;
      const request = { from: this.id, to: voter, epoch: voteTerm, lastIndex, lastTerm, transfer: kind === 'transfer' };
      if (preVote) this.send<PreVoteMessage>({ type: 'pre-vote', ...request });
      else this.send<VoteMessage>({ type: 'vote', ...request });
    }
  }

  private winVote(): void {
    if (this.role === 'pre-candidate') this.hup('election');
    else this.becomeLeader();
  }

  private tallyVotes(): 'won' | 'lost' | 'pending' {
    let granted = 0;
    let rejected = 0;
    for (const voter of this.membership.voters) {
      const vote = this.votes.get(voter);
      if (vote === true) granted += 1;
      else if (vote === false) rejected += 1;
    }
    const quorum = this.quorum();
    if (granted >= quorum) return 'won';
    if (rejected > this.membership.voters.length - quorum) return 'lost';
    return 'pending';
  }

  private handleVoteRequest(message: VoteMessage | PreVoteMessage): void {
    const preVote = message.type === 'pre-vote';
    const canVote =
      this.vote === message.from ||
      (this.vote === null && this.leader === null) ||
      // A pre-vote for a later term promises nothing, so it may be granted whatever we voted.
      (preVote && message.epoch > this.term);
    const responseType = preVote ? 'pre-vote-response' : 'vote-response';
    if (canVote && this.candidateLogIsUpToDate(message.lastIndex, message.lastTerm)) {
      this.send({ type: responseType, from: this.id, to: message.from, epoch: message.epoch, reject: false });
      if (!preVote) {
        this.vote = message.from;
        this.electionElapsedTicks = 0;
      }
      return;
    }
    this.send({ type: responseType, from: this.id, to: message.from, epoch: this.term, reject: true });
  }

  /** Leader lease (thesis §4.2.3): a node that heard from a leader within an election timeout. */
  private inLease(): boolean {
    return this.options.checkQuorum && this.leader !== null && this.electionElapsedTicks < this.options.electionTimeoutTicks;
  }

  /** Handles a message from a later term; returns whether to go on stepping it. */
  private stepHigherTerm(message: RaftMessage): boolean {
    if (message.type === 'vote' || message.type === 'pre-vote') {
      // A node that hears from a live leader ignores campaigns that would
      // disrupt it (removed servers, flaky links), unless a transfer asked for one.
      if (this.inLease() && !message.transfer) return false;
      // A pre-vote never changes anyone's term.
      if (message.type === 'pre-vote') return true;
    }
    // A granted pre-vote echoes the term we would campaign in.
    if (message.type === 'pre-vote-response' && !message.reject) return true;
    if (this.role === 'leader' && this.transferee !== null) {
      if (message.from === this.transferee) this.transferWatch = { to: this.transferee };
      else this.abortTransfer(`node ${message.from} moved to the later term ${message.epoch}`);
      this.transferee = null;
    }
    if (this.role === 'leader') this.emit({ type: 'leader:lost', epoch: this.term, leader: this.id, reason: `saw the later term ${message.epoch} from ${message.from}` });
    const fromLeader = message.type === 'append' || message.type === 'heartbeat' || message.type === 'snapshot';
    this.becomeFollower(message.epoch, fromLeader ? message.from : null);
    return true;
  }

  private stepLowerTerm(message: RaftMessage): void {
    if ((this.options.checkQuorum || this.options.preVote) && (message.type === 'append' || message.type === 'heartbeat')) {
      // A leader partitioned away keeps its old term; with CheckQuorum or
      // PreVote nobody would tell it otherwise, so answer with our term.
      this.send<AppendResponseMessage>({
        type: 'append-response',
        from: this.id,
        to: message.from,
        epoch: this.term,
        index: 0,
        reject: false,
        hintTerm: 0,
        hintIndex: 0,
      });
    } else if (message.type === 'pre-vote') {
      this.send({ type: 'pre-vote-response', from: this.id, to: message.from, epoch: this.term, reject: true });
    }
  }

  // ---------------------------------------------------------------------------
  // Role step functions.

  private stepFollower(message: RaftMessage): void {
    switch (message.type) {
      case 'append':
        this.hearFromLeader(message.from);
        this.handleAppend(message);
        return;
      case 'heartbeat':
        this.hearFromLeader(message.from);
        this.handleHeartbeat(message);
        return;
      case 'snapshot':
        this.hearFromLeader(message.from);
        this.handleSnapshot(message);
        return;
      case 'timeout-now':
        // The leader handed over (thesis §3.10): campaign at once, past any lease.
        this.hup('transfer');
        return;
      case 'read-index-response':
        this.readStates.push({ requestId: message.requestId, index: message.index });
        return;
      default:
        // Responses meant for a leader or a candidate we no longer are.
        return;
    }
  }

  private stepCandidate(message: RaftMessage): void {
    switch (message.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // A leader of our term exists (or, for a pre-candidate, of a term we do not exceed).
        this.becomeFollower(message.epoch, message.from);
        this.stepFollower(message);
        return;
      case 'vote-response':
      case 'pre-vote-response': {
        const expected = this.role === 'pre-candidate' ? 'pre-vote-response' : 'vote-response';
        if (message.type !== expected || this.votes.has(message.from)) return;
        this.votes.set(message.from, !message.reject);
        const outcome = this.tallyVotes();
        if (outcome === 'won') this.winVote();
        else if (outcome === 'lost') this.becomeFollower(this.term, null);
        return;
      }
      default:
        return;
    }
  }

  private stepLeader(message: RaftMessage): void {
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    progress.ticksSinceContact = 0;
    switch (message.type) {
      case 'append-response':
        this.handleAppendResponse(message, progress);
        return;
      case 'heartbeat-response':
        this.handleHeartbeatResponse(message, progress);
        return;
      case 'read-index':
        this.handleForwardedRead(message);
        return;
      default:
        return;
    }
  }

  private hearFromLeader(leader: NodeId): void {
    this.electionElapsedTicks = 0;
    this.ticksSinceLeaderContact = 0;
    this.setLeader(leader);
  }

  // ---------------------------------------------------------------------------
  // Log replication, follower side.

  private handleAppend(message: AppendMessage): void {
    const committed = this.log.committedIndex;
    if (message.previousIndex < committed) {
      // Everything up to our commit index matches; tell the leader where to resume.
      this.respondAppend(message.from, committed);
      return;
    }
    if (this.log.matchTerm(message.previousIndex, message.previousTerm)) {
      const conflictIndex = this.log.appendFromLeader(message.entries);
      let sawConfig = false;
      for (const entry of message.entries) if (entry.kind === 'config') sawConfig = true;
      const configIndex = this.configEntry?.index ?? 0;
      if (sawConfig || (conflictIndex !== 0 && conflictIndex <= configIndex)) this.refreshMembership(true);
      const lastNewIndex = message.previousIndex + message.entries.length;
      this.commitTo(Math.min(message.commit, lastNewIndex));
      this.respondAppend(message.from, lastNewIndex);
      return;
    }
    this.rejectAppend(message);
  }

  /** §5.3 optimization: name the conflicting term and the first index we hold of it. */
  private rejectAppend(message: AppendMessage): void {
    const lastIndex = this.log.lastIndex();
    let hintTerm = 0;
    let hintIndex = lastIndex + 1;
    if (message.previousIndex <= lastIndex) {
      hintTerm = this.log.termAt(message.previousIndex) as number;
      hintIndex = this.log.firstIndexOfTerm(hintTerm, message.previousIndex);
    }
    this.send<AppendResponseMessage>({
      type: 'append-response',
      from: this.id,
      to: message.from,
      epoch: this.term,
      index: message.previousIndex,
      reject: true,
      hintTerm,
      hintIndex,
    });
  }

  private respondAppend(to: NodeId, index: number): void {
    this.send<AppendResponseMessage>({
      type: 'append-response',
      from: this.id,
      to,
      epoch: this.term,
      index,
      reject: false,
      hintTerm: 0,
      hintIndex: 0,
    });
  }

  private handleHeartbeat(message: HeartbeatMessage): void {
    // The leader sends at most what we acknowledged, so it is in our log.
    if (message.commit <= this.log.lastIndex()) this.commitTo(message.commit);
    this.send<HeartbeatResponseMessage>({
      type: 'heartbeat-response',
      from: this.id,
      to: message.from,
      epoch: this.term,
      readContext: message.readContext,
    });
  }

  private handleSnapshot(message: SnapshotMessage): void {
    const { meta } = message.snapshot;
    if (meta.index <= this.log.committedIndex) {
      this.respondAppend(message.from, this.log.committedIndex);
      return;
    }
    if (this.log.matchTerm(meta.index, meta.epoch)) {
      // We already hold the snapshot's last entry: the prefix is committed, keep our log.
      this.commitTo(meta.index);
      this.respondAppend(message.from, this.log.committedIndex);
      return;
    }
    this.log.restore(meta.index, meta.epoch);
    this.incomingSnapshot = message.snapshot;
    this.latestSnapshot = message.snapshot;
    this.baseMembership = meta.membership;
    this.configEntry = null;
    if (!sameMembership(this.membership, meta.membership)) {
      this.setMembership(meta.membership, null, `restored from the snapshot at index ${meta.index}`);
    }
    this.respondAppend(message.from, this.log.lastIndex());
  }

  // ---------------------------------------------------------------------------
  // Log replication, leader side.

  private handleAppendResponse(message: AppendResponseMessage, progress: Progress): void {
    if (message.reject) {
      const nextIndexHint = this.nextIndexFromHint(message);
      if (progress.maybeDecreaseTo(message.index, nextIndexHint)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.maybeSendAppend(message.from, true);
      }
      return;
    }
    if (!progress.maybeUpdate(message.index)) return;
    if (progress.state === 'probe') {
      progress.becomeReplicate();
    } else if (progress.state === 'snapshot' && progress.matchIndex >= progress.pendingSnapshotIndex) {
      progress.becomeProbe();
      progress.becomeReplicate();
    } else if (progress.state === 'replicate') {
      progress.inflights.freeTo(message.index);
    }
    // Followers learn the new commit index with the next Ready's appends (or
    // heartbeats), batched with whatever else arrives before then.
    if (this.maybeCommit()) this.commitBroadcastPending = true;
    // Fill the window: more entries may be waiting for this follower.
    while (this.maybeSendAppend(message.from, false)) {
      // Each call sends one batch; the loop ends when the window is full or nothing is left.
    }
    if (message.from === this.transferee && progress.matchIndex === this.log.lastIndex()) {
      this.sendTimeoutNow(message.from);
    }
  }

  /**
   * The §5.3 optimization, leader side: if we hold entries of the follower's
   * conflicting term, resume right after our last one; otherwise skip the
   * follower's whole term.
   */
  private nextIndexFromHint(message: AppendResponseMessage): number {
    if (message.hintTerm === 0) return message.hintIndex;
    const lastOfTerm = this.log.lastIndexWithTermAtMost(message.hintTerm, message.index);
    if (lastOfTerm > this.log.snapshotIndex && this.log.termAt(lastOfTerm) === message.hintTerm) return lastOfTerm + 1;
    return message.hintIndex;
  }

  private handleHeartbeatResponse(message: HeartbeatResponseMessage, progress: Progress): void {
    progress.probeSent = false;
    // An append may have been lost; free one slot so replication can resume.
    if (progress.state === 'replicate' && progress.inflights.full()) progress.inflights.freeFirst();
    // A snapshot may have been lost; after an election timeout, probe again (which resends it if needed).
    if (progress.state === 'snapshot' && progress.snapshotTicks >= this.options.electionTimeoutTicks) progress.becomeProbe();
    if (progress.matchIndex < this.log.lastIndex()) this.maybeSendAppend(message.from, true);
    if (message.readContext !== 0) this.acknowledgeRead(message.readContext, message.from);
  }

  /** Sends one append (or a snapshot) to `to` if its flow control allows; returns whether it did. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.progress.get(to);
    if (progress === undefined || to === this.id || progress.isPaused()) return false;
    const previousIndex = progress.nextIndex - 1;
    const previousTerm = this.log.termAt(previousIndex);
    if (previousTerm === undefined) return this.sendSnapshot(progress);
    const lastIndex = this.log.lastIndex();
    const entries =
      progress.nextIndex <= lastIndex
        ? this.log.slice(progress.nextIndex, Math.min(lastIndex, progress.nextIndex + messageEntriesMax - 1), this.options.appendBytesMax)
        : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send<AppendMessage>({
      type: 'append',
      from: this.id,
      to,
      epoch: this.term,
      previousIndex,
      previousTerm,
      entries,
      commit: this.log.committedIndex,
    });
    if (progress.state === 'replicate') {
      if (entries.length > 0) {
        const lastSent = previousIndex + entries.length;
        progress.nextIndex = lastSent + 1;
        progress.inflights.add(lastSent);
      }
    } else {
      progress.probeSent = true;
    }
    return true;
  }

  private sendSnapshot(progress: Progress): boolean {
    const snapshot = this.latestSnapshot;
    if (snapshot === null) throw new Error(`raft: entry ${progress.nextIndex - 1} is compacted but no snapshot is held`);
    this.send<SnapshotMessage>({ type: 'snapshot', from: this.id, to: progress.nodeId, epoch: this.term, snapshot });
    progress.becomeSnapshot(snapshot.meta.index);
    return true;
  }

  private broadcastHeartbeat(readContext: number): void {
    for (const progress of this.progress.values()) {
      if (progress.nodeId === this.id) continue;
      this.send<HeartbeatMessage>({
        type: 'heartbeat',
        from: this.id,
        to: progress.nodeId,
        epoch: this.term,
        // Never more than the follower is known to hold, so it can commit without a log check.
        commit: Math.min(progress.matchIndex, this.log.committedIndex),
        readContext,
      });
    }
  }

  /** Sends what proposals and commits since the last Ready call for, batched per follower. */
  private flushAppends(): void {
    if (!this.appendsPending && !this.commitBroadcastPending) return;
    const sendIfEmpty = this.commitBroadcastPending;
    this.appendsPending = false;
    this.commitBroadcastPending = false;
    if (this.role !== 'leader') return;
    if (this.maybeCommit()) {
      for (const progress of this.progress.values()) this.maybeSendAppend(progress.nodeId, true);
      return;
    }
    for (const progress of this.progress.values()) this.maybeSendAppend(progress.nodeId, sendIfEmpty);
  }

  private appendLocal(entry: Entry): void {
    this.log.append(entry);
    const self = this.progress.get(this.id);
    if (self !== undefined) self.maybeUpdate(entry.index);
    this.appendsPending = true;
  }

  private maybeCommit(): boolean {
    const index = this.commitIndexByQuorum();
    if (index <= this.log.committedIndex) return false;
    this.commitTo(index);
    return true;
  }

  private commitTo(index: number): void {
    const wasCommittedInTerm = this.role === 'leader' && this.committedInCurrentTerm();
    if (!this.log.commitTo(index)) return;
    if (this.role !== 'leader') return;
    this.forgetAcknowledgedProposals();
    if (!wasCommittedInTerm && this.committedInCurrentTerm()) this.releaseForwardedReads();
    if (!this.isVoter(this.id) && this.log.committedIndex >= (this.configEntry?.index ?? 0)) {
      this.handOverAfterRemoval();
    }
  }

  /**
   * Thesis §4.2.2: a removed leader manages the cluster until its removal
   * commits, then steps down. It first tells the others the new commit index
   * and, as in a leadership transfer (§3.10), lets the most up-to-date voter
   * campaign at once rather than after an election timeout.
   */
  private handOverAfterRemoval(): void {
    let successor: Progress | null = null;
    for (const progress of this.progress.values()) {
      if (progress.nodeId === this.id) continue;
      this.maybeSendAppend(progress.nodeId, true);
      if (progress.voter && (successor === null || progress.matchIndex > successor.matchIndex)) successor = progress;
    }
    if (successor !== null && successor.matchIndex === this.log.lastIndex()) this.sendTimeoutNow(successor.nodeId);
    this.stepDown('removed from the voters by a committed membership change');
  }

  private forgetAcknowledgedProposals(): void {
    let lowest = this.log.lastIndex();
    for (const progress of this.progress.values()) lowest = Math.min(lowest, progress.matchIndex);
    this.proposalClock.forgetThrough(lowest);
  }

  private committedInCurrentTerm(): boolean {
    return this.log.termAt(this.log.committedIndex) === this.term;
  }

  private checkCanAppend(): Err | null {
    if (this.role !== 'leader') {
      return err('not_leader', `node ${this.id} is not the leader; the leader is ${this.leader ?? 'unknown'}`);
    }
    if (this.transferee !== null) {
      return err('transferring', `leadership is moving to ${this.transferee}; retry on the new leader`);
    }
    if (this.log.lastIndex() - this.log.committedIndex >= uncommittedEntriesMax) {
      return err('overloaded', `${uncommittedEntriesMax} entries already wait to be committed`);
    }
    return null;
  }

  // ---------------------------------------------------------------------------
  // Leadership transfer (thesis §3.10).

  private checkTransferTarget(target: NodeId): Err | null {
    if (this.role !== 'leader') {
      return err('not_leader', `node ${this.id} is not the leader; the leader is ${this.leader ?? 'unknown'}`);
    }
    if (target === this.id) return err('target_is_self', `node ${target} already leads`);
    if (this.membership.learners.includes(target)) return err('target_is_learner', `node ${target} is a learner and cannot lead`);
    if (!this.isVoter(target)) return err('unknown_node', `node ${target} is not a voter of this cluster`);
    return null;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeout-now', from: this.id, to, epoch: this.term });
  }

  private abortTransfer(reason: string): void {
    if (this.transferee === null) return;
    this.emit({ type: 'transfer:aborted', epoch: this.term, from: this.id, to: this.transferee, reason });
    this.transferee = null;
  }

  private resolveTransferWatch(leader: NodeId): void {
    const watch = this.transferWatch;
    if (watch === null) return;
    this.transferWatch = null;
    this.emitTransferOutcome(watch, leader, `node ${leader} was elected instead`);
  }

  private emitTransferOutcome(watch: TransferWatch, leader: NodeId | null, reason: string): void {
    if (leader === watch.to) {
      this.emit({ type: 'transfer:completed', epoch: this.term, from: this.id, to: watch.to });
    } else {
      this.emit({ type: 'transfer:aborted', epoch: this.term, from: this.id, to: watch.to, reason });
    }
  }

  // ---------------------------------------------------------------------------
  // Linearizable reads (thesis §6.4).

  private startRead(requestId: string, origin: NodeId): Result<null> {
    if (this.membership.voters.length === 1 && this.isVoter(this.id)) {
      this.deliverRead(requestId, this.log.committedIndex, origin);
      return ok(null);
    }
    if (this.pendingReads.length >= readRequestsMax) {
      return err('too_many_reads', `${readRequestsMax} reads already wait for a heartbeat round`);
    }
    this.readContextSequence += 1;
    const acknowledgedBy = new Set<NodeId>();
    if (this.isVoter(this.id)) acknowledgedBy.add(this.id);
    this.pendingReads.push({ requestId, index: this.log.committedIndex, origin, context: this.readContextSequence, acknowledgedBy });
    this.broadcastHeartbeat(this.readContextSequence);
    return ok(null);
  }

  private handleForwardedRead(message: ReadIndexMessage): void {
    if (this.committedInCurrentTerm()) {
      this.startRead(message.requestId, message.from);
      return;
    }
    // Wait for the no-op of this term to commit; beyond the bound the follower's request times out.
    if (this.forwardedReads.length < forwardedReadsMax) {
      this.forwardedReads.push({ requestId: message.requestId, origin: message.from });
    }
  }

  private releaseForwardedReads(): void {
    const reads = this.forwardedReads;
    this.forwardedReads = [];
    for (const read of reads) this.startRead(read.requestId, read.origin);
  }

  /** A heartbeat round acknowledged by a quorum confirms this read and every earlier one. */
  private acknowledgeRead(context: number, from: NodeId): void {
    const position = this.pendingReads.findIndex((read) => read.context === context);
    if (position === -1) return;
    const read = this.pendingReads[position] as PendingRead;
    if (this.isVoter(from)) read.acknowledgedBy.add(from);
    if (read.acknowledgedBy.size < this.quorum()) return;
    const confirmed = this.pendingReads.splice(0, position + 1);
    for (const done of confirmed) this.deliverRead(done.requestId, done.index, done.origin);
  }

  private deliverRead(requestId: string, index: number, origin: NodeId): void {
    if (origin === this.id) {
      this.readStates.push({ requestId, index });
      return;
    }
    this.send({ type: 'read-index-response', from: this.id, to: origin, epoch: this.term, requestId, index });
  }

  // ---------------------------------------------------------------------------
  // Membership (thesis §4.1): a config entry takes effect when appended.

  private setMembership(membership: Membership, configEntry: Entry | null, change: string): void {
    this.membership = membership;
    this.configEntry = configEntry;
    this.emit({
      type: 'membership:changed',
      epoch: this.term,
      voters: [...membership.voters],
      learners: [...membership.learners],
      change,
    });
    if (this.role !== 'leader') return;
    const nextIndex = this.log.lastIndex() + 1;
    for (const node of [...membership.voters, ...membership.learners]) {
      const existing = this.progress.get(node);
      const voter = membership.voters.includes(node);
      if (existing !== undefined) existing.voter = voter;
      else this.progress.set(node, new Progress(node, voter, nextIndex, this.options.inflightAppendsMax));
    }
    for (const node of [...this.progress.keys()]) {
      if (node === this.id) {
        (this.progress.get(node) as Progress).voter = membership.voters.includes(node);
      } else if (!membership.voters.includes(node) && !membership.learners.includes(node)) {
        this.progress.delete(node);
      }
    }
    if (this.transferee !== null && !membership.voters.includes(this.transferee)) {
      this.abortTransfer(`${this.transferee} is no longer a voter`);
    }
    // A smaller quorum may already hold entries no longer waiting for the removed node.
    if (this.maybeCommit()) this.commitBroadcastPending = true;
  }

  /** Re-reads the membership from the last config entry in the log (after an append or a truncation). */
  private refreshMembership(announce: boolean): void {
    const entry = this.log.lastConfigEntry(this.log.lastIndex());
    if (entry === undefined) {
      if (this.configEntry === null) return;
      if (announce) this.setMembership(this.baseMembership, null, 'reverted: the config entry was truncated');
      else this.membership = this.baseMembership;
      this.configEntry = null;
      return;
    }
    // Identity, not index: a truncated config entry may be replaced by another at the same index.
    if (entry === this.configEntry) return;
    const decoded = decodeConfigEntry(entry.data);
    if (!decoded.ok) throw new Error(`raft: config entry ${entry.index}: ${decoded.error.message}`);
    if (announce) {
      this.setMembership(decoded.data.membership, entry, decoded.data.change);
    } else {
      this.membership = decoded.data.membership;
      this.configEntry = entry;
    }
  }

  private membershipAt(index: number): Membership {
    const entry = this.log.lastConfigEntry(index);
    if (entry === undefined) return this.baseMembership;
    const decoded = decodeConfigEntry(entry.data);
    if (!decoded.ok) throw new Error(`raft: config entry ${entry.index}: ${decoded.error.message}`);
    return decoded.data.membership;
  }

  // ---------------------------------------------------------------------------
  // Small leaves.

  private isVoter(node: NodeId): boolean {
    return this.membership.voters.includes(node);
  }

  /** Only voters campaign; learners and removed nodes never do. */
  private isPromotable(): boolean {
    return this.isVoter(this.id);
  }

  private quorum(): number {
    return Math.floor(this.membership.voters.length / 2) + 1;
  }

  private reportedRole(): EngineStatus['role'] {
    switch (this.role) {
      case 'leader':
        return 'leader';
      case 'candidate':
      case 'pre-candidate':
        return 'candidate';
      case 'follower':
        return this.membership.learners.includes(this.id) ? 'learner' : 'follower';
    }
  }

  private hardStateChanged(): boolean {
    const persisted = this.persistedHardState;
    return persisted.term !== this.term || persisted.vote !== this.vote || persisted.commit !== this.log.committedIndex;
  }

  private send<M extends RaftMessage>(message: M): void {
    this.messages.push(message);
  }

  private emit(event: EventBody): void {
    this.events.push(event);
  }
}

function assertOptions(options: EngineOptions): void {
  const positive = (name: string, value: number): void => {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`raft: ${name} must be a positive integer, got ${value}`);
  };
  positive('electionTimeoutTicks', options.electionTimeoutTicks);
  positive('heartbeatIntervalTicks', options.heartbeatIntervalTicks);
  positive('inflightAppendsMax', options.inflightAppendsMax);
  positive('appendBytesMax', options.appendBytesMax);
  if (options.heartbeatIntervalTicks >= options.electionTimeoutTicks) {
    throw new RangeError('raft: heartbeatIntervalTicks must be below electionTimeoutTicks');
  }
  if (options.tickIntervalMs !== undefined && !(options.tickIntervalMs > 0)) {
    throw new RangeError(`raft: tickIntervalMs must be positive, got ${options.tickIntervalMs}`);
  }
}

/** Storage hands back the record Ready.hardState gave it; check it is one of ours. */
function readHardState(hardState: RestoredState['hardState']): RaftHardState {
  if (hardState === null) return { term: 0, vote: null, commit: 0 };
  const { term, vote, commit } = hardState;
  if (typeof term !== 'number' || typeof commit !== 'number' || !(vote === null || typeof vote === 'string')) {
    throw new Error(`raft: restored hard state is not {term, vote, commit}: ${JSON.stringify(hardState)}`);
  }
  return { term, vote: vote ?? null, commit };
}
