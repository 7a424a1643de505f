/**
 * How Raft configuration entries carry a membership.
 *
 * A `config` entry's data is the UTF-8 JSON of the whole membership that takes
 * effect when the entry is appended, plus a short description of the change:
 *
 *   {"voters":["1","2","3"],"learners":["4"],"change":"add-learner 4"}
 *
 * Carrying the resulting membership (rather than the delta) makes a config
 * entry self-contained: a node that joins empty, or that reverts a truncated
 * config entry, never has to replay earlier changes to know who votes.
 */
import { z } from 'zod';
import { NodeIdSchema, describeIssues, err, ok, type NodeId, type Result } from '../../../shared/protocol';
import type { Membership, MembershipChange } from '../engine';

/** The model caps voters and learners at 64 each (NodeStatusSchema). */
export const membershipNodesMax = 64;
export const configChangeTextLengthMax = 256;

export const MembershipSchema = z.object({
  voters: z.array(NodeIdSchema).max(membershipNodesMax).readonly(),
  learners: z.array(NodeIdSchema).max(membershipNodesMax).readonly(),
});

const ConfigEntrySchema = MembershipSchema.extend({
  change: z.string().max(configChangeTextLengthMax),
});

export interface ConfigEntryData {
  readonly membership: Membership;
  readonly change: string;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

export function encodeConfigEntry(membership: Membership, change: string): Uint8Array {
  const body = { voters: [...membership.voters], learners: [...membership.learners], change };
  return textEncoder.encode(JSON.stringify(body));
}

/** Decodes a config entry's data; an error value names what is wrong. */
export function decodeConfigEntry(data: Uint8Array): Result<ConfigEntryData> {
  let json: unknown;
  try {
    json = JSON.parse(textDecoder.decode(data));
  } catch {
    return err('invalid_config_entry', 'config entry data is not UTF-8 JSON');
  }
  const parsed = ConfigEntrySchema.safeParse(json);
  if (!parsed.success) return err('invalid_config_entry', `invalid config entry: ${describeIssues(parsed.error, 'config')}`);
  const { voters, learners, change } = parsed.data;
  const overlap = voters.find((node) => learners.includes(node));
  if (overlap !== undefined) return err('invalid_config_entry', `config.learners: ${overlap} is also a voter`);
  if (new Set(voters).size !== voters.length || new Set(learners).size !== learners.length) {
    return err('invalid_config_entry', 'config: a node is listed twice');
  }
  return ok({ membership: { voters, learners }, change });
}

/** Describes a change as one short line, e.g. `add-voter 4`. */
export function describeChange(change: MembershipChange): string {
  return `${change.type} ${change.node}`;
}

/** The membership after `change`, or an error value saying why the change is refused. */
export function applyChange(membership: Membership, change: MembershipChange): Result<Membership> {
  const node: NodeId = change.node;
  const isVoter = membership.voters.includes(node);
  const isLearner = membership.learners.includes(node);
  switch (change.type) {
    case 'add-voter':
      if (isVoter || isLearner) return err('already_member', `node ${node} is already a member; promote a learner instead`);
      if (membership.voters.length >= membershipNodesMax) return err('too_many_members', `at most ${membershipNodesMax} voters`);
      return ok({ voters: [...membership.voters, node], learners: membership.learners });
    case 'add-learner':
      if (isVoter || isLearner) return err('already_member', `node ${node} is already a member`);
      if (membership.learners.length >= membershipNodesMax) return err('too_many_members', `at most ${membershipNodesMax} learners`);
      return ok({ voters: membership.voters, learners: [...membership.learners, node] });
    case 'promote-learner':
      if (!isLearner) return err('not_learner', `node ${node} is not a learner`);
      if (membership.voters.length >= membershipNodesMax) return err('too_many_members', `at most ${membershipNodesMax} voters`);
      return ok({ voters: [...membership.voters, node], learners: membership.learners.filter((id) => id !== node) });
    case 'remove-node':
      if (!isVoter && !isLearner) return err('unknown_node', `node ${node} is not a member`);
      if (isVoter && membership.voters.length === 1) return err('last_voter', `node ${node} is the last voter`);
      return ok({
        voters: membership.voters.filter((id) => id !== node),
        learners: membership.learners.filter((id) => id !== node),
      });
  }
}

export function sameMembership(a: Membership, b: Membership): boolean {
  const sameSet = (x: readonly NodeId[], y: readonly NodeId[]): boolean =>
    x.length === y.length && x.every((node) => y.includes(node));
  return sameSet(a.voters, b.voters) && sameSet(a.learners, b.learners);
}
