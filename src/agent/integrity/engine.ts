import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { xxh64 } from '@node-rs/xxhash';
import type { Clock, Logger } from '../../shared/logger';
import { err, ok, type EventBody, type IntegrityStatus, type Result } from '../../shared/protocol';
import { createRandom } from '../../shared/random';
import type { Entry } from '../consensus/engine';
import { contentHash, encodeEntryRecord, encodeSealRecord, encodeSegmentHeader, parseSegmentFileName, type StorageIssue } from '../storage/codec';
import { Disk } from '../storage/disk';
import { decodeSnapshot, parseSnapshotName, saveSnapshotFile } from '../storage/snapshot-store';
import type { SealedSegmentInfo, WalObserver } from '../storage/wal';
import { injectSegmentFault, injectSnapshotFault, type FaultKind, type InjectedFault } from './faults';
import { decodeManifest, encodeManifest, hashHex, manifestFileName, type ManifestEntry } from './manifest';
import { addMember, computeParity, decodeParity, encodeParity, parityBlockBytesDefault, parityFileName, paritySegmentsPerGroupDefault, rebuildMember, type ParityGroup } from './parity';
import { SegmentChecksumCheck, scanFileInChunks, scrubReadBytes, scrubSliceBytes } from './scrub';
import { verifySealedSegment, verifySnapshotFile } from './verify';

/**
 * The integrity engine of one agent (see README.md): keeps the manifest and
 * the parity of sealed segments in step with the WAL, scrubs at a bounded
 * rate, classifies damage, and repairs it (local parity first, then a healthy
 * peer), reporting every finding and repair as an event.
 *
 * It decides whether the node may serve: a node holding data it cannot read
 * must not vote or answer (Protocol-Aware Recovery, FAST 2018), so `serving`
 * stays false until every known damage is repaired.
 */

export const scrubRateBytesPerSecondDefault = 8 * 1024 * 1024;
export const scrubIntervalMsDefault = 60_000;
/** More than any configured segment plus one oversized record: a larger file is not a segment the scrubber reads. */
const scrubSegmentBytesMax = 2 * 1024 * 1024 * 1024;
/** Seals waiting for their manifest entry and parity; beyond it the backlog is rebuilt by a full reconcile. */
export const pendingSealsMax = 4096;
/** Damage waiting for a repair that failed once; beyond it the node stays not serving until a restart re-verifies. */
export const unrepairedMax = 1024;
/** Pause between repair attempts of damage that could not be repaired yet (peers down, entries not committed). */
export const repairRetryMs = 1_000;
/** Entry data asked of a peer per repair request. */
export const repairPageBytesMax = 4 * 1024 * 1024;
/** Pages of one segment fetched from a peer; a segment is at most a few pages. */
const repairPagesMax = 4096;

export interface IntegrityOptions {
  readonly dataDir: string;
  readonly recordBytesMax: number;
  readonly parityBlockBytes?: number;
  readonly paritySegmentsPerGroup?: number;
  readonly scrubRateBytesPerSecond?: number;
  readonly scrubIntervalMs?: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** How this node asks a peer for data it lost; the runtime implements it over the peer transport. */
export interface PeerRepairLink {
  peers(): readonly string[];
  fetchEntries(peer: string, fromIndex: number, toIndex: number): Promise<Result<Entry[]>>;
  fetchSnapshot(peer: string, indexMin: number): Promise<Result<Uint8Array>>;
}

/** What the engine needs from the running node; absent while it waits for a repair on start. */
export interface LiveNode {
  sealedSegments(): SealedSegmentInfo[];
  /** Writes a fresh snapshot from the live state machine (the local repair of a damaged snapshot file). */
  rewriteSnapshot(): Promise<Result<null>>;
}

export type RepairSource = 'parity' | 'peer' | 'truncate' | 'snapshot';
export type DetectedBy = 'read' | 'scrub' | 'recovery' | 'peer';

export interface ScrubReport {
  readonly bytes: number;
  readonly durationMs: number;
  readonly findings: readonly StorageIssue[];
  readonly repaired: number;
}

export class IntegrityEngine {
  private readonly manifest = new Map<number, ManifestEntry>();
  /** Bumped whenever a segment changes under the engine, so a scrub or repair in flight knows its view went stale. */
  private readonly generations = new Map<number, number>();
  private readonly pendingSeals: SealedSegmentInfo[] = [];
  private readonly dirtyGroups = new Set<number>();
  private readonly unrepaired = new Map<string, { issue: StorageIssue; detectedBy: DetectedBy; sinceMs: number }>();
  private readonly listeners = new Set<(body: EventBody) => void>();
  private readonly disk = new Disk();
  private readonly blockBytes: number;
  private readonly groupSegments: number;
  private readonly scrubRateBytesPerSecond: number;
  private readonly scrubIntervalMs: number;
  private worker: Promise<void> | null = null;
  private scrub: Promise<ScrubReport> | null = null;
  private scrubTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private repairing = 0;
  private stopped = false;
  private live: LiveNode | null = null;
  private peerLink: PeerRepairLink | null = null;
  private bytesScrubbed = 0;
  private lastScrubAtMs: number | null = null;
  private corruptionsFound = 0;
  private corruptionsRepaired = 0;
  private blockedReason: string | null = null;
  /** Set when this replica's state hash is in the minority: its state, not its files, is wrong, so no repair clears it; a restart rebuilds it from the log. */
  private divergedReason: string | null = null;
  /** Turns every check off: only the tests that show the checks bite use it. */
  private checksEnabled = true;
  /** The scrubber's one read buffer (scrubReadBytes), allocated on the first scrub and reused. */
  private scrubReadBuffer: Buffer | null = null;

  readonly walObserver: WalObserver = {
    sealed: (segment) => this.onSealed(segment),
    changing: (segment) => this.onChanging(segment),
  };

  private constructor(private readonly options: IntegrityOptions) {
    this.blockBytes = options.parityBlockBytes ?? parityBlockBytesDefault;
    this.groupSegments = options.paritySegmentsPerGroup ?? paritySegmentsPerGroupDefault;
    this.scrubRateBytesPerSecond = options.scrubRateBytesPerSecond ?? scrubRateBytesPerSecondDefault;
    this.scrubIntervalMs = options.scrubIntervalMs ?? scrubIntervalMsDefault;
    if (!Number.isInteger(this.blockBytes) || this.blockBytes < 512 || this.blockBytes % 4 !== 0) throw new RangeError(`parity block size must be a multiple of 4 of at least 512 bytes, got ${this.blockBytes}`);
    if (!Number.isInteger(this.groupSegments) || this.groupSegments < 2 || this.groupSegments > 64) throw new RangeError(`parity group must hold 2..64 segments, got ${this.groupSegments}`);
    if (!(this.scrubRateBytesPerSecond > 0)) throw new RangeError(`scrub rate must be positive, got ${this.scrubRateBytesPerSecond}`);
  }

  /** Loads the manifest. A damaged manifest is not fatal: it is rebuilt from the sealed segments, whose seals carry their own hash. */
  static async open(options: IntegrityOptions): Promise<IntegrityEngine> {
    const engine = new IntegrityEngine(options);
    await mkdir(engine.parityDir(), { recursive: true });
    let bytes: Buffer | null = null;
    try {
      bytes = await readFile(engine.manifestPath());
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
    if (bytes !== null) {
      const decoded = decodeManifest(bytes);
      if (decoded.ok) for (const entry of decoded.entries) engine.manifest.set(entry.segment, entry);
      else options.logger.warn({ reason: decoded.reason }, 'integrity manifest is damaged; rebuilding it from the sealed segments');
    }
    return engine;
  }

  onEvent(listener: (body: EventBody) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setPeerLink(link: PeerRepairLink | null): void {
    this.peerLink = link;
  }

  /**
   * The node runs: from now on the engine scrubs its sealed segments. Sealed
   * segments without a manifest entry (a crash between a seal and its
   * manifest write) get one now; entries of segments gone are dropped.
   */
  attach(live: LiveNode): void {
    this.live = live;
    const sealed = live.sealedSegments();
    const present = new Set(sealed.map((segment) => segment.segment));
    for (const segment of [...this.manifest.keys()]) {
      if (present.has(segment)) continue;
      this.manifest.delete(segment);
      this.dirtyGroups.add(this.groupOf(segment));
    }
    for (const segment of sealed) if (!this.manifest.has(segment.segment)) this.onSealed(segment);
    this.schedule();
  }

  startBackgroundScrub(firstDelayMs = Math.min(10_000, this.scrubIntervalMs)): void {
    if (this.stopped || this.scrubTimer !== null) return;
    const run = (delayMs: number) => {
      this.scrubTimer = setTimeout(() => {
        void this.scrubNow().finally(() => {
          if (!this.stopped) run(this.scrubIntervalMs);
        });
      }, delayMs);
      this.scrubTimer.unref();
    };
    run(firstDelayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.scrubTimer !== null) clearTimeout(this.scrubTimer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    await this.scrub?.catch(() => undefined);
    await this.whenIdle();
  }

  /** Resolves once every queued manifest and parity update is written. */
  async whenIdle(): Promise<void> {
    // Bounded: each pass drains work queued before it; new seals only arrive with new writes.
    for (let pass = 0; pass < 1_000 && this.worker !== null; pass += 1) await this.worker;
  }

  serving(): boolean {
    return this.blockedReason === null && this.divergedReason === null && this.unrepaired.size === 0;
  }

  /** Why the node does not serve, or null. */
  notServingReason(): string | null {
    if (this.divergedReason !== null) return this.divergedReason;
    if (this.blockedReason !== null) return this.blockedReason;
    const first = this.unrepaired.values().next().value;
    if (first === undefined) return null;
    return `holds data it cannot read and has not repaired yet: ${first.issue.kind} in ${basename(first.issue.file)} at offset ${first.issue.offset}${first.issue.index === null ? '' : `, index ${first.issue.index}`}`;
  }

  /** Marks the node not serving for a reason outside any single file (damage found on start, before it is classified). */
  block(reason: string | null): void {
    this.blockedReason = reason;
  }

  /** This replica's state hash differs from the majority's: it stops serving rather than answer from divergent state. */
  markDiverged(reason: string): void {
    if (this.divergedReason !== null) return;
    this.divergedReason = reason;
    this.corruptionsFound += 1;
  }

  setChecksEnabled(enabled: boolean): void {
    this.checksEnabled = enabled;
  }

  status(): IntegrityStatus {
    const parity = this.repairing > 0 ? 'rebuilding' : this.dirtyGroups.size > 0 || this.unrepaired.size > 0 ? 'degraded' : this.manifest.size === 0 ? 'none' : 'ok';
    return {
      bytesScrubbed: this.bytesScrubbed,
      lastScrubAtMs: this.lastScrubAtMs,
      scrubInProgress: this.scrub !== null,
      corruptionsFound: this.corruptionsFound,
      corruptionsRepaired: this.corruptionsRepaired,
      parity,
      serving: this.serving(),
      reason: truncateText(this.notServingReason(), 1024),
    };
  }

  manifestEntry(segment: number): ManifestEntry | null {
    return this.manifest.get(segment) ?? null;
  }

  // ---- manifest and parity upkeep ----

  private onSealed(segment: SealedSegmentInfo): void {
    if (this.pendingSeals.length >= pendingSealsMax) {
      // The backlog is too long to hold; its group is rebuilt from the files instead.
      this.dirtyGroups.add(this.groupOf(segment.segment));
    } else {
      this.pendingSeals.push(segment);
    }
    this.schedule();
  }

  private onChanging(segment: number): void {
    this.generations.set(segment, this.generation(segment) + 1);
    this.manifest.delete(segment);
    const index = this.pendingSeals.findIndex((pending) => pending.segment === segment);
    if (index >= 0) this.pendingSeals.splice(index, 1);
    this.dirtyGroups.add(this.groupOf(segment));
    this.schedule();
  }

  private schedule(): void {
    if (this.worker !== null || this.stopped) return;
    this.worker = (async () => {
      try {
        // Bounded by the queues, which only the WAL's writes refill.
        for (let step = 0; step < pendingSealsMax * 4; step += 1) {
          const seal = this.pendingSeals.shift();
          if (seal !== undefined) {
            await this.recordSeal(seal);
            continue;
          }
          const group = this.dirtyGroups.values().next().value;
          if (group === undefined) break;
          this.dirtyGroups.delete(group);
          await this.recomputeGroup(group);
        }
        await this.writeManifest();
      } catch (error) {
        this.options.logger.error({ error: describe(error) }, 'integrity upkeep failed; parity stays degraded until the next seal');
      } finally {
        this.worker = null;
        if (this.pendingSeals.length > 0 || this.dirtyGroups.size > 0) this.schedule();
      }
    })();
  }

  private async recordSeal(info: SealedSegmentInfo): Promise<void> {
    const generation = this.generation(info.segment);
    const bytes = await readIfPresent(info.path);
    if (bytes === null || generation !== this.generation(info.segment)) return;
    // The segment is verified before its hash becomes the reference every later check trusts.
    const issue = verifySealedSegment(info.path, bytes, { previousEpoch: info.previousEpoch, expectedHash: null, recordBytesMax: this.options.recordBytesMax });
    if (issue !== null) {
      this.options.logger.error({ issue }, 'a segment failed verification right after its seal; no manifest entry is written for it');
      return;
    }
    const hash = hashHex(xxh64(bytes));
    this.manifest.set(info.segment, { segment: info.segment, firstIndex: info.firstIndex, lastIndex: info.lastIndex, bytes: bytes.length, hash });
    const group = this.groupOf(info.segment);
    if (this.dirtyGroups.has(group)) return;
    const existing = await this.readParity(group);
    const consistent = existing === null || existing.members.every((member) => member.segment !== info.segment && this.manifest.get(member.segment)?.hash === member.hash);
    if (!consistent) {
      this.dirtyGroups.add(group);
      return;
    }
    await this.writeParity(addMember(existing, group, this.blockBytes, { segment: info.segment, bytes, hash }));
  }

  /** Recomputes a group's parity from its members' files: after a member left, or when the cheap path could not be taken. */
  private async recomputeGroup(group: number): Promise<void> {
    const members: { segment: number; bytes: Buffer; hash: string }[] = [];
    for (const segment of this.segmentsOfGroup(group)) {
      const entry = this.manifest.get(segment);
      if (entry === undefined) continue;
      const bytes = await readIfPresent(this.segmentPath(entry));
      // A member that does not match its manifest hash stays out: parity must be built from good data only; the scrubber repairs it.
      if (bytes === null || hashHex(xxh64(bytes)) !== entry.hash) continue;
      members.push({ segment, bytes, hash: entry.hash });
    }
    if (members.length === 0) {
      await rm(join(this.parityDir(), parityFileName(group)), { force: true });
      return;
    }
    await this.writeParity(computeParity(group, this.blockBytes, members));
  }

  private async readParity(group: number): Promise<ParityGroup | null> {
    const bytes = await readIfPresent(join(this.parityDir(), parityFileName(group)));
    if (bytes === null) return null;
    const decoded = decodeParity(bytes);
    if (!decoded.ok || decoded.group.group !== group || decoded.group.blockBytes !== this.blockBytes) {
      this.options.logger.warn({ group, reason: decoded.ok ? 'wrong group or block size' : decoded.reason }, 'parity file is unusable; recomputing it');
      this.dirtyGroups.add(group);
      return null;
    }
    return decoded.group;
  }

  private async writeParity(group: ParityGroup): Promise<void> {
    await this.disk.writeAtomically(this.parityDir(), join(this.parityDir(), parityFileName(group.group)), encodeParity(group));
  }

  private async writeManifest(): Promise<void> {
    const entries = [...this.manifest.values()].sort((a, b) => a.segment - b.segment);
    await this.disk.writeAtomically(this.integrityDir(), this.manifestPath(), [encodeManifest(entries)]);
  }

  // ---- repair ----

  /**
   * Repairs one classified issue: a sealed segment from local parity, then
   * from a healthy peer; a snapshot from the live state machine, then from a
   * peer. Publishes the finding first and the repair after. An issue that
   * cannot be repaired now is kept, the node stops serving, and it is retried.
   */
  async handleIssue(issue: StorageIssue, detectedBy: DetectedBy): Promise<Result<RepairSource>> {
    if (!this.unrepaired.has(issue.file)) {
      this.corruptionsFound += 1;
      this.publish({ type: 'corruption:detected', kind: issue.kind, file: issue.file, offset: issue.offset, index: issue.index, detectedBy, detail: truncateText(issue.reason, 1024) ?? '' });
      this.options.logger.error({ issue, detectedBy }, 'storage damage found');
    }
    const startedMs = performance.now();
    this.repairing += 1;
    let outcome: Result<{ source: RepairSource; detail: string }>;
    try {
      outcome = await this.repair(issue);
    } catch (error) {
      outcome = err('repair_failed', describe(error));
    } finally {
      this.repairing -= 1;
    }
    if (!outcome.ok) {
      if (this.unrepaired.size < unrepairedMax || this.unrepaired.has(issue.file)) this.unrepaired.set(issue.file, { issue, detectedBy, sinceMs: this.options.clock.nowMs() });
      else this.block(`more than ${unrepairedMax} damaged files wait for repair`);
      this.options.logger.warn({ file: issue.file, reason: outcome.error.message }, 'repair failed; the node does not serve until it succeeds');
      this.scheduleRetry();
      return outcome;
    }
    this.unrepaired.delete(issue.file);
    this.corruptionsRepaired += 1;
    const durationMs = performance.now() - startedMs;
    this.publish({ type: 'corruption:repaired', file: issue.file, index: issue.index, repairedFrom: outcome.data.source, durationMs, detail: truncateText(outcome.data.detail, 1024) ?? '' });
    this.options.logger.info({ file: issue.file, source: outcome.data.source, durationMs }, 'storage damage repaired');
    return ok(outcome.data.source);
  }

  /** A torn tail was cut on open: reported like any finding, with truncation as its (only legitimate) repair. */
  noteTornTail(issue: StorageIssue & { readonly bytesTruncated: number }): void {
    this.corruptionsFound += 1;
    this.corruptionsRepaired += 1;
    this.publish({ type: 'corruption:detected', kind: 'torn-tail', file: issue.file, offset: issue.offset, index: issue.index, detectedBy: 'recovery', detail: truncateText(issue.reason, 1024) ?? '' });
    this.publish({ type: 'corruption:repaired', file: issue.file, index: issue.index, repairedFrom: 'truncate', durationMs: 0, detail: `cut ${issue.bytesTruncated} unacknowledged bytes` });
  }

  /** Damage that is waiting for a retry. */
  pendingIssues(): StorageIssue[] {
    return [...this.unrepaired.values()].map((pending) => pending.issue);
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer !== null || this.live === null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void (async () => {
        for (const pending of [...this.unrepaired.values()]) {
          if (this.stopped) return;
          await this.handleIssue(pending.issue, pending.detectedBy);
        }
      })();
    }, repairRetryMs);
    this.retryTimer.unref();
  }

  private async repair(issue: StorageIssue): Promise<Result<{ source: RepairSource; detail: string }>> {
    const name = basename(issue.file);
    if (parseSnapshotName(name) !== null) return this.repairSnapshot(issue);
    const named = parseSegmentFileName(name);
    if (named === null) return err('unrepairable', `${name} is neither a segment nor a snapshot; only a restart can re-verify it`);
    const reasons: string[] = [];
    const fromParity = await this.repairFromParity(issue.file, named.segment);
    if (fromParity.ok) return ok({ source: 'parity', detail: fromParity.data });
    reasons.push(`parity: ${fromParity.error.message}`);
    const fromPeer = await this.repairSegmentFromPeer(issue.file, named);
    if (fromPeer.ok) return ok({ source: 'peer', detail: fromPeer.data });
    reasons.push(`peers: ${fromPeer.error.message}`);
    return err('repair_failed', reasons.join('; '));
  }

  /** Rebuilds a damaged sealed segment from its group's parity and the other members; accepted only if it hashes to the manifest's value. */
  async repairFromParity(path: string, segment: number): Promise<Result<string>> {
    const entry = this.manifest.get(segment);
    if (entry === undefined) return err('no_manifest', `segment ${segment} has no manifest entry`);
    const generation = this.generation(segment);
    const group = await this.readParity(this.groupOf(segment));
    if (group === null) return err('no_parity', `no parity for group ${this.groupOf(segment)}`);
    const member = group.members.find((candidate) => candidate.segment === segment);
    if (member === undefined || member.hash !== entry.hash) return err('no_parity', `segment ${segment} is not covered by its group's parity`);
    const others = new Map<number, Buffer>();
    for (const other of group.members) {
      if (other.segment === segment) continue;
      const otherEntry = this.manifest.get(other.segment);
      if (otherEntry === undefined) return err('no_parity', `segment ${other.segment} of the group is gone`);
      const bytes = await readIfPresent(this.segmentPath(otherEntry));
      if (bytes === null) return err('no_parity', `segment ${other.segment} of the group is missing`);
      others.set(other.segment, bytes);
    }
    const damaged = (await readIfPresent(path)) ?? Buffer.alloc(0);
    const rebuilt = rebuildMember(group, segment, damaged, others);
    if (!rebuilt.ok) return err('parity_failed', rebuilt.reason);
    if (hashHex(xxh64(rebuilt.bytes)) !== entry.hash) return err('parity_failed', 'the rebuilt segment does not match its manifest xxh64');
    return this.replaceSegment(path, segment, generation, rebuilt.bytes, `rebuilt ${rebuilt.blocksRebuilt} block(s) of ${this.blockBytes} bytes from group ${group.group}'s parity`);
  }

  /**
   * Protocol-aware repair: fetch exactly the segment's entries from a peer
   * that has them committed, re-encode the segment, and accept it only if it
   * hashes to the manifest's value (or, without a manifest entry, if every
   * entry carries the identity its position demands).
   */
  private async repairSegmentFromPeer(path: string, named: { segment: number; firstIndex: number }): Promise<Result<string>> {
    const link = this.peerLink;
    if (link === null || link.peers().length === 0) return err('no_peer', 'no peer to repair from');
    const entry = this.manifest.get(named.segment);
    const lastIndex = entry?.lastIndex ?? (await this.lastIndexFromNeighbour(path, named));
    if (lastIndex === null) return err('unknown_range', `cannot tell which entries segment ${named.segment} held`);
    const generation = this.generation(named.segment);
    const reasons: string[] = [];
    for (const peer of link.peers()) {
      const entries = await this.fetchRange(link, peer, named.firstIndex, lastIndex);
      if (!entries.ok) {
        reasons.push(`${peer}: ${entries.error.message}`);
        continue;
      }
      const bytes = encodeSegment(named.segment, named.firstIndex, entries.data);
      if (entry !== undefined && hashHex(xxh64(bytes)) !== entry.hash) {
        reasons.push(`${peer}: its entries do not hash to the manifest's xxh64`);
        continue;
      }
      const replaced = await this.replaceSegment(path, named.segment, generation, bytes, `fetched entries ${named.firstIndex}..${lastIndex} from ${peer} (committed there) and rewrote the segment`);
      if (replaced.ok) return replaced;
      reasons.push(`${peer}: ${replaced.error.message}`);
    }
    return err('peer_failed', reasons.join('; ') || 'no peer answered');
  }

  private async fetchRange(link: PeerRepairLink, peer: string, fromIndex: number, toIndex: number): Promise<Result<Entry[]>> {
    const entries: Entry[] = [];
    let next = fromIndex;
    for (let page = 0; page < repairPagesMax && next <= toIndex; page += 1) {
      const fetched = await link.fetchEntries(peer, next, toIndex);
      if (!fetched.ok) return fetched;
      if (fetched.data.length === 0) return err('peer_failed', `${peer} sent no entries from ${next}`);
      for (const fetchedEntry of fetched.data) {
        // Identity check: the peer must answer exactly the index asked for, in order, with epochs that never go back.
        if (fetchedEntry.index !== next) return err('peer_failed', `${peer} sent index ${fetchedEntry.index} where ${next} was asked`);
        const previous = entries.at(-1);
        if (previous !== undefined && fetchedEntry.epoch < previous.epoch) return err('peer_failed', `${peer} sent epochs that go backwards at ${next}`);
        entries.push(fetchedEntry);
        next += 1;
        if (next > toIndex) break;
      }
    }
    return next > toIndex ? ok(entries) : err('peer_failed', `${peer} did not deliver entries up to ${toIndex}`);
  }

  /** Without a manifest entry, the next segment's first index bounds this one. */
  private async lastIndexFromNeighbour(path: string, named: { segment: number; firstIndex: number }): Promise<number | null> {
    const names = await readdir(dirname(path));
    const next = names
      .map((name) => parseSegmentFileName(name))
      .filter((candidate): candidate is { segment: number; firstIndex: number } => candidate !== null && candidate.segment > named.segment)
      .sort((a, b) => a.segment - b.segment)[0];
    return next === undefined ? null : next.firstIndex - 1;
  }

  private async replaceSegment(path: string, segment: number, generation: number, bytes: Buffer, detail: string): Promise<Result<string>> {
    if (generation !== this.generation(segment)) return err('changed', `segment ${segment} changed during the repair`);
    const entry = this.manifest.get(segment);
    const issue = verifySealedSegment(path, bytes, { previousEpoch: 0, expectedHash: entry?.hash ?? null, recordBytesMax: this.options.recordBytesMax });
    if (issue !== null) return err('verify_failed', `the rebuilt segment fails verification: ${issue.reason}`);
    await this.disk.writeAtomically(dirname(path), path, [bytes]);
    return ok(detail);
  }

  private async repairSnapshot(issue: StorageIssue): Promise<Result<{ source: RepairSource; detail: string }>> {
    const reasons: string[] = [];
    if (this.live !== null) {
      const rewritten = await this.live.rewriteSnapshot();
      if (rewritten.ok) return ok({ source: 'snapshot', detail: 'rewrote the snapshot from the live, verified state machine' });
      reasons.push(`local: ${rewritten.error.message}`);
    }
    const link = this.peerLink;
    const named = parseSnapshotName(basename(issue.file));
    if (link !== null && named !== null) {
      for (const peer of link.peers()) {
        const fetched = await link.fetchSnapshot(peer, named.index);
        if (!fetched.ok) {
          reasons.push(`${peer}: ${fetched.error.message}`);
          continue;
        }
        const decoded = decodeSnapshot(Buffer.from(fetched.data.buffer, fetched.data.byteOffset, fetched.data.length));
        if (!decoded.ok) {
          reasons.push(`${peer}: its snapshot fails verification: ${decoded.reason}`);
          continue;
        }
        if (decoded.snapshot.meta.index < named.index) {
          reasons.push(`${peer}: its snapshot at ${decoded.snapshot.meta.index} is older than ${named.index}`);
          continue;
        }
        await saveSnapshotFile(this.disk, dirname(issue.file), decoded.snapshot);
        return ok({ source: 'peer', detail: `installed ${peer}'s verified snapshot at index ${decoded.snapshot.meta.index}` });
      }
    } else {
      reasons.push('peers: no peer to repair from');
    }
    return err('repair_failed', reasons.join('; '));
  }

  // ---- scrub ----

  /** Runs one scrub pass now, or joins the one in progress. */
  scrubNow(): Promise<ScrubReport> {
    if (this.scrub !== null) return this.scrub;
    const run = this.runScrub().finally(() => {
      this.scrub = null;
    });
    this.scrub = run;
    return run;
  }

  private async runScrub(): Promise<ScrubReport> {
    const startedMs = performance.now();
    const pacer = new Pacer(this.scrubRateBytesPerSecond);
    const findings: StorageIssue[] = [];
    let repaired = 0;
    let bytes = 0;
    const segments = this.live?.sealedSegments() ?? [];
    for (const segment of segments) {
      if (this.stopped) break;
      const generation = this.generation(segment.segment);
      const scanned = await this.scrubSegment(segment, pacer);
      if (scanned === null) continue;
      bytes += scanned.bytes;
      this.bytesScrubbed += scanned.bytes;
      const issue = scanned.issue;
      if (issue === null || generation !== this.generation(segment.segment)) continue;
      findings.push(issue);
      if ((await this.handleIssue(issue, 'scrub')).ok) repaired += 1;
    }
    const snapshot = await this.newestSnapshotPath();
    if (snapshot !== null && !this.stopped) {
      const content = await readPaced(snapshot, pacer);
      if (content !== null) {
        bytes += content.length;
        this.bytesScrubbed += content.length;
        const issue = this.checksEnabled ? verifySnapshotFile(snapshot, content) : null;
        // A snapshot replaced while it was read is not damage: only the newest file counts.
        if (issue !== null && (await this.newestSnapshotPath()) === snapshot) {
          findings.push(issue);
          if ((await this.handleIssue(issue, 'scrub')).ok) repaired += 1;
        }
      }
    }
    const durationMs = performance.now() - startedMs;
    this.lastScrubAtMs = this.options.clock.nowMs();
    this.publish({ type: 'scrub:completed', bytes, durationMs, corruptions: findings.length });
    return { bytes, durationMs, findings, repaired };
  }

  /**
   * One sealed segment: its bytes against the manifest's xxh64 first (the
   * segment is immutable once sealed, so any damage changes the hash); only a
   * suspect segment, or one without a manifest hash to check against, is read
   * whole and classified record by record. Null when the file is gone.
   */
  private async scrubSegment(segment: SealedSegmentInfo, pacer: Pacer): Promise<{ bytes: number; issue: StorageIssue | null } | null> {
    const entry = this.manifest.get(segment.segment);
    if (this.checksEnabled && entry !== undefined) {
      const check = new SegmentChecksumCheck(BigInt(`0x${entry.hash}`));
      const scanned = await scanFileInChunks(segment.path, check, { buffer: this.scrubBuffer(), sliceBytes: scrubSliceBytes, recordBytesMax: this.options.recordBytesMax, pacer, fileBytesMax: scrubSegmentBytesMax });
      if (scanned.status === 'missing') return null;
      const suspicion = scanned.failure ?? check.finish();
      if (suspicion === null) return { bytes: scanned.bytes, issue: null };
      const content = await readIfPresent(segment.path);
      if (content === null) return null;
      const issue = this.checkSegment(segment, content);
      // The detailed verifier is the reference: a suspicion it does not confirm is logged, not repaired.
      if (issue === null) this.options.logger.warn({ file: segment.path, suspicion }, 'the fast scrub check flagged a segment the detailed verifier passes');
      return { bytes: scanned.bytes, issue };
    }
    const content = await readPaced(segment.path, pacer);
    if (content === null) return null;
    return { bytes: content.length, issue: this.checkSegment(segment, content) };
  }

  private scrubBuffer(): Buffer {
    this.scrubReadBuffer ??= Buffer.allocUnsafe(scrubReadBytes);
    return this.scrubReadBuffer;
  }

  /** Verifies one sealed segment's bytes with the detailed verifier (the scrubber's classifier, also used by tests). */
  checkSegment(segment: SealedSegmentInfo, content: Buffer): StorageIssue | null {
    if (!this.checksEnabled) return null;
    return verifySealedSegment(segment.path, content, { previousEpoch: segment.previousEpoch, expectedHash: this.manifest.get(segment.segment)?.hash ?? null, recordBytesMax: this.options.recordBytesMax });
  }

  private async newestSnapshotPath(): Promise<string | null> {
    const dir = join(this.options.dataDir, 'snapshots');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    const newest = names
      .map((name) => ({ name, identity: parseSnapshotName(name) }))
      .filter((file): file is { name: string; identity: { index: number; epoch: number } } => file.identity !== null)
      .sort((a, b) => b.identity.index - a.identity.index || b.identity.epoch - a.identity.epoch)[0];
    return newest === undefined ? null : join(dir, newest.name);
  }

  // ---- drills ----

  /** The corruption drill: damages this node's newest sealed segment or its snapshot on disk, as a failing disk would. */
  async injectFault(target: 'segment' | 'snapshot', fault: FaultKind, seed: number): Promise<Result<InjectedFault & { file: string }>> {
    const random = createRandom(seed);
    if (target === 'snapshot') {
      const path = await this.newestSnapshotPath();
      if (path === null) return err('no_target', 'this node holds no snapshot yet');
      const bytes = await readFile(path);
      const injection = injectSnapshotFault(bytes, fault, random);
      if (!injection.ok) return err('no_target', injection.reason);
      await overwrite(path, injection.damaged);
      return ok({ ...injection.injected, file: path });
    }
    const sealed = this.live?.sealedSegments() ?? [];
    if (sealed.length === 0) return err('no_target', 'this node holds no sealed segment yet');
    const segment = sealed[random.int(0, sealed.length - 1)];
    if (segment === undefined) return err('no_target', 'no sealed segment');
    const bytes = await readFile(segment.path);
    const donors: Buffer[] = [];
    for (const other of sealed.slice(-3)) if (other.segment !== segment.segment) donors.push(await readFile(other.path));
    const injection = injectSegmentFault(bytes, fault, random, { recordBytesMax: this.options.recordBytesMax, previousEpoch: segment.previousEpoch, donors });
    if (!injection.ok) return err('no_target', injection.reason);
    await overwrite(segment.path, injection.damaged);
    return ok({ ...injection.injected, file: segment.path });
  }

  // ---- helpers ----

  private publish(body: EventBody): void {
    for (const listener of this.listeners) listener(body);
  }

  private generation(segment: number): number {
    return this.generations.get(segment) ?? 0;
  }

  private groupOf(segment: number): number {
    return Math.floor(Math.max(0, segment - 1) / this.groupSegments);
  }

  private segmentsOfGroup(group: number): number[] {
    return Array.from({ length: this.groupSegments }, (_, position) => group * this.groupSegments + position + 1);
  }

  private segmentPath(entry: ManifestEntry): string {
    return join(this.options.dataDir, 'wal', `${entry.segment.toString(16).padStart(16, '0')}-${entry.firstIndex.toString(16).padStart(16, '0')}.wal`);
  }

  private integrityDir(): string {
    return join(this.options.dataDir, 'integrity');
  }

  private parityDir(): string {
    return join(this.integrityDir(), 'parity');
  }

  private manifestPath(): string {
    return join(this.integrityDir(), manifestFileName);
  }
}

/** The exact bytes the WAL writes for a sealed segment holding `entries`. */
export function encodeSegment(segment: number, firstIndex: number, entries: readonly Entry[]): Buffer {
  const parts: Buffer[] = [encodeSegmentHeader({ segment, firstIndex })];
  for (const entry of entries) parts.push(encodeEntryRecord(segment, entry));
  const body = Buffer.concat(parts);
  const seal = encodeSealRecord({ segment, index: firstIndex + entries.length - 1, epoch: entries.at(-1)?.epoch ?? 0, contentHash: contentHash(body), entryCount: entries.length });
  return Buffer.concat([body, seal]);
}

/** Keeps reads at or below a byte rate, so the scrubber never crowds out foreground I/O. */
export class Pacer {
  private readonly startedMs = performance.now();
  private bytes = 0;

  constructor(private readonly bytesPerSecond: number) {}

  async consumed(bytes: number): Promise<void> {
    this.bytes += bytes;
    const dueMs = (this.bytes / this.bytesPerSecond) * 1000;
    const aheadMs = dueMs - (performance.now() - this.startedMs);
    if (aheadMs > 1) await sleep(aheadMs);
  }
}

async function readPaced(path: string, pacer: Pacer): Promise<Buffer | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
  try {
    const size = (await handle.stat()).size;
    const bytes = Buffer.alloc(size);
    for (let offset = 0; offset < size; ) {
      const { bytesRead } = await handle.read(bytes, offset, Math.min(scrubReadBytes, size - offset), offset);
      if (bytesRead <= 0) return bytes.subarray(0, offset);
      offset += bytesRead;
      await pacer.consumed(bytesRead);
    }
    return bytes;
  } finally {
    await handle.close();
  }
}

async function readIfPresent(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

/** A drill writes in place, without fsync games: the point is damage the node did not write. */
async function overwrite(path: string, bytes: Buffer): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.truncate(bytes.length);
    await handle.write(bytes, 0, bytes.length, 0);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

function isMissing(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ENOENT';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function truncateText(text: string | null, lengthMax: number): string | null {
  if (text === null) return null;
  return text.length <= lengthMax ? text : `${text.slice(0, lengthMax - 1)}…`;
}
