/**
 * The Raft engine's public face: the factory the agent runtime and the
 * simulator use, and what tests need to build variants of the engine.
 */
import type { EngineFactory, EngineOptions, RestoredState } from '../engine';
import { parseRaftMessage, type RaftMessage } from './messages';
import { RaftEngine } from './raft';

export { RaftEngine, type RaftRole } from './raft';
export { parseRaftMessage, type RaftMessage, type RaftMessageType } from './messages';
export { decodeConfigEntry, encodeConfigEntry, type ConfigEntryData } from './membership';

/** A class that builds a Raft engine: `RaftEngine` itself, or a subclass that overrides a protected hook. */
export type RaftEngineClass = new (options: EngineOptions, restored: RestoredState) => RaftEngine;

export function createRaftFactory(EngineClass: RaftEngineClass = RaftEngine): EngineFactory<RaftMessage> {
  return {
    kind: 'raft',
    create: (options, restored) => new EngineClass(options, restored),
    parseMessage: parseRaftMessage,
  };
}

export const raftFactory: EngineFactory<RaftMessage> = createRaftFactory();
