import type { NodeStatus } from '../../src/shared/protocol';

/**
 * A well-formed status of a Raft leader with one caught-up follower. Lives
 * outside any test file: importing a *.test.ts would run its tests again.
 */
export function validStatus(overrides: Partial<NodeStatus> = {}): NodeStatus {
  return {
    nodeId: 'n1',
    clusterId: 'demo',
    engine: 'raft',
    role: 'leader',
    epoch: 3,
    epochLabel: 'term 3',
    leader: 'n1',
    lastIndex: 10,
    commitIndex: 10,
    appliedIndex: 9,
    voters: ['n1', 'n2', 'n3'],
    learners: [],
    followers: [
      { nodeId: 'n2', voter: true, state: 'replicate', matchIndex: 10, nextIndex: 11, lagEntries: 0, lagMs: 0, lastContactMs: 12 },
    ],
    transferringTo: null,
    integrity: null,
    storage: null,
    process: null,
    drillsAllowed: false,
    activeDrills: [],
    ...overrides,
  };
}
