import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Entry } from '../../../src/agent/consensus/engine';
import { IntegrityEngine, type PeerRepairLink } from '../../../src/agent/integrity/engine';
import { faultKinds, injectSegmentFault, injectSnapshotFault, type FaultKind } from '../../../src/agent/integrity/faults';
import { SegmentChecksumCheck, fastCheckSegmentBytes } from '../../../src/agent/integrity/scrub';
import { decodeSegmentUnchecked, verifySealedSegment, verifySnapshotFile } from '../../../src/agent/integrity/verify';
import { Storage, walLimitsDefault, type SealedSegmentInfo } from '../../../src/agent/storage';
import { silentLogger } from '../../../src/shared/logger';
import { err, ok, type Result } from '../../../src/shared/protocol';
import { createRandom } from '../../../src/shared/random';
import { TempDirs } from '../storage/helpers';

/**
 * Randomized fault injection on real files: a data directory with many small
 * sealed segments (two parity groups and a half), a snapshot, and a pristine
 * copy playing the healthy peer. Each injection damages one file as a failing
 * disk would; the verifier must classify it as the fault model says, the
 * repair must restore byte-identical content (parity first, then the peer),
 * and the reopened storage must hold every acknowledged entry unchanged.
 */

const injectionsPerKind = 220; // x5 kinds = 1,100 injections
const segmentBytesMax = 4096 * 2;
const recordBytesMax = walLimitsDefault.recordBytesMax;
const dirs = new TempDirs();

function entries(from: number, to: number): Entry[] {
  return Array.from({ length: to - from + 1 }, (_, offset) => {
    const index = from + offset;
    // Epoch 2 from index 200 on: the log holds an epoch change, as a real one does.
    return { index, epoch: index < 200 ? 1 : 2, kind: 'normal' as const, data: new Uint8Array(40 + (index % 3) * 8).fill(index % 251) };
  });
}

/** The healthy peer: a second storage holding the same committed log, read through the same verified path the agent uses. */
function peerOver(storage: Storage): PeerRepairLink {
  return {
    peers: () => ['peer'],
    fetchEntries: async (_peer, fromIndex, toIndex): Promise<Result<Entry[]>> => storage.readEntries(fromIndex, toIndex, 1024 * 1024),
    fetchSnapshot: async (): Promise<Result<Uint8Array>> => {
      const read = await storage.readNewestSnapshotBytes();
      if (!read.ok) return read;
      return read.data === null ? err('not_available', 'no snapshot') : ok(read.data.bytes);
    },
  };
}

describe('randomized fault injection on real files', () => {
  let dir = '';
  let peerDir = '';
  let sealed: SealedSegmentInfo[] = [];
  const originals = new Map<string, Buffer>();
  let snapshotPath = '';
  let written: Entry[] = [];

  beforeAll(async () => {
    dir = await dirs.make('quorumscope-integrity-');
    const integrity = await IntegrityEngine.open({ dataDir: dir, recordBytesMax, clock: { nowMs: () => Date.now() }, logger: silentLogger });
    const opened = await Storage.open(dir, { walLimits: { segmentBytesMax }, walObserver: integrity.walObserver });
    if (!opened.ok) throw new Error(opened.error.message);
    const { storage } = opened.data;
    written = entries(1, 1200);
    for (let from = 1; from <= 1200; from += 50) {
      const appended = await storage.persist({ hardState: { term: 2, vote: null, commit: from + 49 }, entries: written.slice(from - 1, from + 49), snapshot: null });
      expect(appended.ok).toBe(true);
    }
    const saved = await storage.saveSnapshot({ meta: { index: 100, epoch: 1, membership: { voters: ['n1'], learners: [] } }, data: new Uint8Array(9000).fill(7) });
    expect(saved.ok).toBe(true);
    integrity.attach({ sealedSegments: () => storage.sealedSegments(), rewriteSnapshot: async () => err('unsupported', 'offline') });
    await integrity.whenIdle();
    sealed = storage.sealedSegments();
    await storage.close();
    await integrity.stop();
    expect(sealed.length).toBeGreaterThanOrEqual(9);
    for (const segment of sealed) originals.set(segment.path, await readFile(segment.path));
    const snapshots = await readdir(join(dir, 'snapshots'));
    snapshotPath = join(dir, 'snapshots', snapshots.find((name) => name.endsWith('.snap')) ?? '');
    originals.set(snapshotPath, await readFile(snapshotPath));
    peerDir = await dirs.copy(dir);
  }, 30_000);

  afterAll(async () => {
    await dirs.removeAll();
  });

  it('detects and classifies every one of 1,100 injected faults, repairs it byte-identical, and loses no acknowledged entry', async () => {
    const random = createRandom(0x5eed);
    const peerOpened = await Storage.open(peerDir, { walLimits: { segmentBytesMax } });
    if (!peerOpened.ok) throw new Error(peerOpened.error.message);
    const peer = peerOpened.data.storage;
    const integrity = await IntegrityEngine.open({ dataDir: dir, recordBytesMax, clock: { nowMs: () => Date.now() }, logger: silentLogger });
    integrity.setPeerLink(peerOver(peer));
    const tally = { injected: 0, detected: 0, flaggedByFastPath: 0, repairedFromParity: 0, repairedFromPeer: 0 };
    const misclassified: string[] = [];
    try {
      for (const fault of faultKinds) {
        for (let round = 0; round < injectionsPerKind; round += 1) {
          const onSnapshot = round % 10 === 9;
          const target = onSnapshot ? snapshotPath : (sealed[random.int(0, sealed.length - 1)]?.path ?? '');
          const segment = sealed.find((candidate) => candidate.path === target);
          const original = originals.get(target) ?? Buffer.alloc(0);
          const injection = onSnapshot
            ? injectSnapshotFault(original, fault, random)
            : injectSegmentFault(original, fault, random, { recordBytesMax, previousEpoch: segment?.previousEpoch ?? 0, donors: [...originals.values()].slice(0, 3) });
          if (!injection.ok) throw new Error(`${fault} could not be injected: ${injection.reason}`);
          await writeFile(target, injection.damaged);
          tally.injected += 1;

          const issue = onSnapshot
            ? verifySnapshotFile(target, injection.damaged)
            : verifySealedSegment(target, injection.damaged, { previousEpoch: segment?.previousEpoch ?? 0, expectedHash: integrity.manifestEntry(segment?.segment ?? -1)?.hash ?? null, recordBytesMax });
          if (issue === null) throw new Error(`${fault} at ${injection.injected.offset} in ${target} went undetected`);
          tally.detected += 1;
          const manifestHash = integrity.manifestEntry(segment?.segment ?? -1)?.hash;
          if (!onSnapshot && segment !== undefined && manifestHash !== undefined) {
            // The scrubber's fast path must flag every fault the detailed verifier finds, or the scrub would miss it.
            const suspicion = fastCheckSegmentBytes(injection.damaged, { segment: segment.segment, firstIndex: segment.firstIndex, previousEpoch: segment.previousEpoch, expectedHash: BigInt(`0x${manifestHash}`), recordBytesMax });
            if (suspicion === null) throw new Error(`${fault} at ${injection.injected.offset} in ${target} passed the fast scrub check`);
            // ...and so must the routine scrub, which checks a sealed segment against its manifest hash.
            const routine = new SegmentChecksumCheck(BigInt(`0x${manifestHash}`));
            routine.absorb(injection.damaged);
            if (routine.finish() === null) throw new Error(`${fault} at ${injection.injected.offset} in ${target} passed the routine checksum scrub`);
            tally.flaggedByFastPath += 1;
          }
          if (issue.kind !== injection.injected.expected) misclassified.push(`${fault} (${injection.injected.detail}): expected ${injection.injected.expected}, got ${issue.kind}: ${issue.reason}`);

          const repaired = await integrity.handleIssue(issue, 'scrub');
          if (!repaired.ok) throw new Error(`${fault} in ${target} was not repaired: ${repaired.error.message}`);
          if (repaired.data === 'parity') tally.repairedFromParity += 1;
          if (repaired.data === 'peer') tally.repairedFromPeer += 1;
          expect((await readFile(target)).equals(original)).toBe(true);
        }
      }
    } finally {
      await peer.close();
      await integrity.stop();
    }
    expect(misclassified).toEqual([]);
    expect(tally.injected).toBeGreaterThanOrEqual(1000);
    expect(tally.detected).toBe(tally.injected);
    expect(tally.flaggedByFastPath).toBeGreaterThan(900);
    // Segment faults are rebuilt locally; snapshots need the peer.
    expect(tally.repairedFromParity).toBeGreaterThan(900);
    expect(tally.repairedFromPeer).toBeGreaterThanOrEqual(100);
    expect(integrity.status().serving).toBe(true);

    const reopened = await Storage.open(dir, { walLimits: { segmentBytesMax } });
    if (!reopened.ok) throw new Error(reopened.error.message);
    try {
      const expected = written.filter((entry) => entry.index > 100);
      expect(reopened.data.restored.entries.map((entry) => [entry.index, entry.epoch, Buffer.from(entry.data).toString('hex')])).toEqual(
        expected.map((entry) => [entry.index, entry.epoch, Buffer.from(entry.data).toString('hex')]),
      );
    } finally {
      await reopened.data.storage.close();
    }
  }, 120_000);

  it('repairs from a peer when two blocks of one stripe are damaged and parity cannot', async () => {
    const first = sealed[0];
    const second = sealed[1];
    if (first === undefined || second === undefined) throw new Error('need two sealed segments');
    const peerOpened = await Storage.open(peerDir, { walLimits: { segmentBytesMax } });
    if (!peerOpened.ok) throw new Error(peerOpened.error.message);
    const integrity = await IntegrityEngine.open({ dataDir: dir, recordBytesMax, clock: { nowMs: () => Date.now() }, logger: silentLogger });
    integrity.setPeerLink(peerOver(peerOpened.data.storage));
    try {
      for (const segment of [first, second]) {
        const damaged = Buffer.from(originals.get(segment.path) ?? Buffer.alloc(0));
        damaged[100] = (damaged[100] ?? 0) ^ 0xff;
        await writeFile(segment.path, damaged);
      }
      const issue = verifySealedSegment(first.path, await readFile(first.path), { previousEpoch: 0, expectedHash: null, recordBytesMax });
      expect(issue?.kind).toBe('corruption');
      const repaired = await integrity.handleIssue(issue ?? { kind: 'corruption', file: first.path, offset: 0, index: null, reason: '' }, 'scrub');
      expect(repaired).toEqual({ ok: true, data: 'peer' });
      const issueTwo = verifySealedSegment(second.path, await readFile(second.path), { previousEpoch: 0, expectedHash: null, recordBytesMax });
      // With the first member whole again, parity rebuilds the second.
      expect(await integrity.handleIssue(issueTwo ?? { kind: 'corruption', file: second.path, offset: 0, index: null, reason: '' }, 'scrub')).toEqual({ ok: true, data: 'parity' });
      expect((await readFile(first.path)).equals(originals.get(first.path) ?? Buffer.alloc(0))).toBe(true);
      expect((await readFile(second.path)).equals(originals.get(second.path) ?? Buffer.alloc(0))).toBe(true);
    } finally {
      await peerOpened.data.storage.close();
      await integrity.stop();
    }
  });

  it('stays not serving, with the reason, when neither parity nor any peer can repair', async () => {
    const first = sealed[0];
    const second = sealed[1];
    if (first === undefined || second === undefined) throw new Error('need two sealed segments');
    const integrity = await IntegrityEngine.open({ dataDir: dir, recordBytesMax, clock: { nowMs: () => Date.now() }, logger: silentLogger });
    try {
      for (const segment of [first, second]) {
        const damaged = Buffer.from(originals.get(segment.path) ?? Buffer.alloc(0));
        damaged[100] = (damaged[100] ?? 0) ^ 0xff;
        await writeFile(segment.path, damaged);
      }
      const issue = verifySealedSegment(first.path, await readFile(first.path), { previousEpoch: 0, expectedHash: null, recordBytesMax });
      const repaired = await integrity.handleIssue(issue ?? { kind: 'corruption', file: first.path, offset: 0, index: null, reason: '' }, 'recovery');
      expect(repaired.ok).toBe(false);
      expect(integrity.status()).toMatchObject({ serving: false, parity: 'degraded' });
      expect(integrity.status().reason).toContain('corruption');
      // Storage refuses to open on it: the damaged entries are never handed to an engine.
      const opened = await Storage.open(dir, { walLimits: { segmentBytesMax } });
      expect(opened.ok).toBe(false);
    } finally {
      await integrity.stop();
      for (const segment of [first, second]) await writeFile(segment.path, originals.get(segment.path) ?? Buffer.alloc(0));
    }
  });

  it('the checks bite: with verification off the same faults go unnoticed and damaged entries would be served', async () => {
    const random = createRandom(0xb17e);
    let missedWithChecksOff = 0;
    let servedWrong = 0;
    const kinds: FaultKind[] = ['bit-flip', 'misdirect', 'stale'];
    for (let round = 0; round < 60; round += 1) {
      const segment = sealed[random.int(0, sealed.length - 1)];
      if (segment === undefined) continue;
      const original = originals.get(segment.path) ?? Buffer.alloc(0);
      const injection = injectSegmentFault(original, kinds[round % kinds.length] ?? 'bit-flip', random, { recordBytesMax, previousEpoch: segment.previousEpoch, donors: [] });
      if (!injection.ok) continue;
      // With checks on, caught every time.
      expect(verifySealedSegment(segment.path, injection.damaged, { previousEpoch: segment.previousEpoch, expectedHash: null, recordBytesMax })).not.toBeNull();
      // With checks off: a reader that trusts lengths alone.
      const unchecked = decodeSegmentUnchecked(injection.damaged);
      const pristine = decodeSegmentUnchecked(original);
      missedWithChecksOff += 1;
      const differs = unchecked.length !== pristine.length || unchecked.some((entry, position) => {
        const good = pristine[position];
        return good === undefined || entry.index !== good.index || entry.epoch !== good.epoch || !Buffer.from(entry.data).equals(Buffer.from(good.data));
      });
      if (differs) servedWrong += 1;
    }
    const integrity = await IntegrityEngine.open({ dataDir: dir, recordBytesMax, clock: { nowMs: () => Date.now() }, logger: silentLogger });
    integrity.setChecksEnabled(false);
    const segment = sealed[2];
    if (segment === undefined) throw new Error('need a sealed segment');
    const damaged = Buffer.from(originals.get(segment.path) ?? Buffer.alloc(0));
    damaged[200] = (damaged[200] ?? 0) ^ 1;
    expect(integrity.checkSegment(segment, damaged)).toBeNull();
    integrity.setChecksEnabled(true);
    expect(integrity.checkSegment(segment, damaged)?.kind).toBe('corruption');
    await integrity.stop();
    expect(missedWithChecksOff).toBeGreaterThan(50);
    // Most faults change what an unchecked reader hands out (a flip in a CRC byte alone does not).
    expect(servedWrong).toBeGreaterThan(40);
  });
});
