import { describe, expect, it } from 'vitest';
import {
  AgentHelloSchema,
  ClusterEventSchema,
  CommandSchema,
  NodeStatusSchema,
  ProfileInputSchema,
  StatusBatchSchema,
  parse,
} from '../../src/shared/protocol';
import { validStatus } from '../support/status';


describe('protocol schemas', () => {
  it('accepts a well-formed node status', () => {
    expect(parse(NodeStatusSchema, validStatus(), 'status').ok).toBe(true);
  });

  it('rejects a status whose epoch is a string, naming the field', () => {
    const answer = parse(NodeStatusSchema, { ...validStatus(), epoch: '3' }, 'status');
    expect(answer.ok).toBe(false);
    if (!answer.ok) {
      expect(answer.error.code).toBe('invalid_payload');
      expect(answer.error.message).toContain('status.epoch');
    }
  });

  it('rejects an unknown role, naming the field', () => {
    const answer = parse(NodeStatusSchema, { ...validStatus(), role: 'king' }, 'status');
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.error.message).toContain('status.role');
  });

  it('names the nested field of a malformed follower', () => {
    const status = validStatus();
    const broken = { ...status, followers: [{ ...status.followers[0], lagEntries: -1 }] };
    const answer = parse(NodeStatusSchema, broken, 'status');
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.error.message).toContain('status.followers.0.lagEntries');
  });

  it('rejects an empty or oversized status batch', () => {
    expect(parse(StatusBatchSchema, [], 'batch').ok).toBe(false);
    const sample = { atMs: 1, status: validStatus() };
    expect(parse(StatusBatchSchema, Array.from({ length: 65 }, () => sample), 'batch').ok).toBe(false);
    expect(parse(StatusBatchSchema, [sample], 'batch').ok).toBe(true);
  });

  it('rejects an event of an unknown type and accepts a leader election', () => {
    const base = { id: 'n1:boot:1', atMs: 5, nodeId: 'n1' };
    const elected = { type: 'leader:elected', epoch: 4, leader: 'n1', previousLeader: 'n2', leaderlessTicks: 10, leaderlessMs: 100 };
    expect(parse(ClusterEventSchema, { ...base, body: elected }, 'event').ok).toBe(true);
    const unknown = parse(ClusterEventSchema, { ...base, body: { type: 'leader:crowned' } }, 'event');
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) expect(unknown.error.message).toContain('event.body.type');
  });

  it('rejects a command with an absurd drill delay, naming the field', () => {
    const answer = parse(CommandSchema, { type: 'drill:run', drill: { kind: 'slow-disk', delayMs: 10_000_000 } }, 'command');
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.error.message).toContain('command.drill.delayMs');
  });

  it('rejects a node id with a path separator', () => {
    const answer = parse(CommandSchema, { type: 'leadership:transfer', to: '../etc' }, 'command');
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.error.message).toContain('command.to');
  });

  it('requires protocol version 1 in the agent hello', () => {
    const hello = { protocolVersion: 2, nodeId: 'n1', clusterId: 'c', engine: 'raft', access: 'viewer', drillsAllowed: false, bootId: 'b', statusIntervalMs: 100 };
    const answer = parse(AgentHelloSchema, hello, 'hello');
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.error.message).toContain('hello.protocolVersion');
  });

  it('rejects a profile without endpoints, with a plain message', () => {
    const answer = parse(ProfileInputSchema, { name: 'x', endpoints: [], token: 't' }, 'profile');
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.error.message).toContain('profile.endpoints: at least one agent endpoint is required');
  });
});

describe('commands are strict', () => {
  it('refuses a command with an unknown field instead of trimming it', () => {
    const answer = parse(CommandSchema, { type: 'leadership:transfer', to: 'n1', force: true }, 'command');
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.error.message).toContain('force');
  });
});
