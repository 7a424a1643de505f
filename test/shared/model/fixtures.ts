import type { EventBody, FollowerProgress, NodeStatus } from '../../../src/shared/protocol';
import { createClusterModel, reduce, type ClusterModel, type ModelConfig, type ModelMessage } from '../../../src/shared/model';
import { validStatus } from '../../support/status';

/** Crafted inputs for the model tests: a status, a sample, an event, and whole healthy clusters. */

export function nodeIds(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `n${index + 1}`);
}

export function status(nodeId: string, overrides: Partial<NodeStatus> = {}): NodeStatus {
  return validStatus({
    nodeId,
    role: 'follower',
    leader: 'n1',
    lastIndex: 100,
    commitIndex: 100,
    appliedIndex: 100,
    voters: nodeIds(3),
    followers: [],
    ...overrides,
  });
}

export function progress(nodeId: string, overrides: Partial<FollowerProgress> = {}): FollowerProgress {
  return { nodeId, voter: true, state: 'replicate', matchIndex: 100, nextIndex: 101, lagEntries: 0, lagMs: 0, lastContactMs: 50, ...overrides };
}

export function sample(atMs: number, nodeStatus: NodeStatus): ModelMessage {
  return { kind: 'sample', sample: { atMs, status: nodeStatus } };
}

export function event(atMs: number, nodeId: string, body: EventBody): ModelMessage {
  return { kind: 'event', event: { id: `${nodeId}:boot:${atMs}:${body.type}`, atMs, nodeId, body } };
}

export function tick(atMs: number): ModelMessage {
  return { kind: 'tick', atMs };
}

export interface ClusterShape {
  voters?: number;
  leader?: string;
  epoch?: number;
  /** Nodes left out of the samples (as if down). */
  missing?: string[];
  /** Lag the leader reports, per follower. */
  lag?: Record<string, Partial<FollowerProgress>>;
}

/** One sample per node of a cluster in which every present node follows `leader`. */
export function clusterSamples(atMs: number, shape: ClusterShape = {}): ModelMessage[] {
  const voters = nodeIds(shape.voters ?? 3);
  const leader = shape.leader ?? 'n1';
  const epoch = shape.epoch ?? 3;
  const missing = new Set(shape.missing ?? []);
  const present = voters.filter((id) => !missing.has(id));
  const followers = present.filter((id) => id !== leader).map((id) => progress(id, shape.lag?.[id] ?? {}));
  return present.map((id) =>
    sample(
      atMs,
      status(id, {
        role: id === leader ? 'leader' : 'follower',
        leader,
        epoch,
        epochLabel: `term ${epoch}`,
        voters,
        followers: id === leader ? followers : [],
      }),
    ),
  );
}

export function run(messages: ModelMessage[], config: Partial<ModelConfig> = {}, from: ClusterModel = createClusterModel(config)): ClusterModel {
  return messages.reduce(reduce, from);
}

/** Ticks from `fromMs` to `toMs` every `stepMs`, re-sending the same cluster samples so no node goes stale. */
export function steady(fromMs: number, toMs: number, stepMs: number, shape: ClusterShape = {}): ModelMessage[] {
  const messages: ModelMessage[] = [];
  for (let atMs = fromMs; atMs <= toMs; atMs += stepMs) messages.push(...clusterSamples(atMs, shape));
  return messages;
}

export function alertIds(model: ClusterModel): string[] {
  return model.alerts.map((alert) => alert.id).sort();
}

export function alertById(model: ClusterModel, id: string) {
  return model.alerts.find((alert) => alert.id === id);
}

export function alertByRule(model: ClusterModel, rule: string) {
  return model.alerts.find((alert) => alert.rule === rule);
}
