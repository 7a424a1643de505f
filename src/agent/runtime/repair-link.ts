import { z } from 'zod';
import { describeIssues, err, ok, type Result } from '../../shared/protocol';
import type { Entry } from '../consensus/engine';
import type { PeerRepairLink } from '../integrity/engine';
import type { ControlEnvelope, RepairRequest } from './envelope';

/**
 * The client half of protocol-aware repair over the peer transport: sends a
 * repair request, waits (bounded) for the reply, and validates it. Frames are
 * already CRC32C-checked by the transport; the integrity engine checks the
 * identity of every entry and the segment's hash on top.
 */
export const repairRequestsInflightMax = 16;
export const repairRequestTimeoutMs = 3_000;
const repairEntriesMax = 100_000;

const EntrySchema = z.object({
  index: z.number().int().nonnegative(),
  epoch: z.number().int().nonnegative(),
  kind: z.enum(['normal', 'noop', 'config']),
  data: z.custom<Uint8Array>((value) => value instanceof Uint8Array, 'expected bytes'),
});
const EntriesReplySchema = z.object({ type: z.literal('entries'), entries: z.array(EntrySchema).max(repairEntriesMax) });
const SnapshotReplySchema = z.object({ type: z.literal('snapshot'), bytes: z.custom<Uint8Array>((value) => value instanceof Uint8Array, 'expected bytes') });

type RepairReply = Extract<ControlEnvelope, { kind: 'repair-reply' }>;

export class TransportRepairLink implements PeerRepairLink {
  private readonly pending = new Map<number, { resolve: (result: Result<unknown>) => void; timer: NodeJS.Timeout }>();
  private nextId = 1;

  constructor(
    private readonly nodeId: string,
    private readonly peerIds: readonly string[],
    private readonly send: (to: string, envelope: ControlEnvelope) => void,
  ) {}

  peers(): readonly string[] {
    return this.peerIds;
  }

  async fetchEntries(peer: string, fromIndex: number, toIndex: number): Promise<Result<Entry[]>> {
    const reply = await this.request(peer, { type: 'entries', fromIndex, toIndex });
    if (!reply.ok) return reply;
    const parsed = EntriesReplySchema.safeParse(reply.data);
    if (!parsed.success) return err('invalid_payload', `repair reply from ${peer}: ${describeIssues(parsed.error)}`);
    return ok(parsed.data.entries);
  }

  async fetchSnapshot(peer: string, indexMin: number): Promise<Result<Uint8Array>> {
    const reply = await this.request(peer, { type: 'snapshot', indexMin });
    if (!reply.ok) return reply;
    const parsed = SnapshotReplySchema.safeParse(reply.data);
    if (!parsed.success) return err('invalid_payload', `repair reply from ${peer}: ${describeIssues(parsed.error)}`);
    return ok(parsed.data.bytes);
  }

  onReply(envelope: RepairReply): void {
    const waiter = this.pending.get(envelope.id);
    if (waiter === undefined) return;
    clearTimeout(waiter.timer);
    this.pending.delete(envelope.id);
    waiter.resolve(envelope.result.ok ? ok(envelope.result.data) : { ok: false, error: envelope.result.error });
  }

  close(): void {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.resolve(err('stopping', 'the node is shutting down'));
    }
    this.pending.clear();
  }

  private request(peer: string, request: RepairRequest): Promise<Result<unknown>> {
    if (this.pending.size >= repairRequestsInflightMax) return Promise.resolve(err('overloaded', 'too many repair requests in flight'));
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(err('timeout', `${peer} did not answer the repair request within ${repairRequestTimeoutMs} ms`));
      }, repairRequestTimeoutMs);
      this.pending.set(id, { resolve, timer });
      this.send(peer, { kind: 'repair-request', from: this.nodeId, to: peer, id, request });
    });
  }
}
