import type { ClusterEvent, Command, CommandAck, EngineKind, NodeStatus, Result } from '../../shared/protocol';
import type { KvOperation, KvOutput } from '../kv/command';

/** A client's identity for exactly-once retries (Raft thesis §6.3). */
export interface ClientSession {
  clientId: string;
  sequence: number;
}

/**
 * What the agent's HTTP API and telemetry server need from the node. The node
 * host implements it; keeping it narrow lets both servers be tested alone.
 */
export interface NodeService {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly engine: EngineKind;
  readonly drillsAllowed: boolean;
  readonly bootId: string;
  status(): NodeStatus;
  /** Replicates a write (forwarding it to the leader) and answers once it is applied. */
  submit(operation: KvOperation, session: ClientSession | null): Promise<Result<{ index: number; output: KvOutput }>>;
  /** A read; linearizable through ReadIndex unless `linearizable` is false. */
  read(key: string, linearizable: boolean): Promise<Result<{ value: string | null; index: number }>>;
  /** An operator command; the caller has checked the operator token. */
  command(command: Command): Promise<CommandAck>;
  onEvent(listener: (event: ClusterEvent) => void): () => void;
}

/** HTTP status for each error code a node answers with. */
export function httpStatusFor(code: string): number {
  switch (code) {
    case 'invalid_payload':
    case 'invalid_request':
    case 'invalid_key':
    case 'invalid_command':
    case 'unknown_node':
    case 'target_is_self':
    case 'target_is_learner':
      return 400;
    case 'unauthorized':
      return 401;
    case 'forbidden':
    case 'drills_disabled':
      return 403;
    case 'not_found':
      return 404;
    case 'cas_mismatch':
    case 'stale_sequence':
    case 'session_expired':
    case 'target_lagging':
    case 'target_unreachable':
    case 'busy':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'unsupported_media_type':
      return 415;
    case 'headers_too_large':
      return 431;
    case 'no_leader':
    case 'not_leader':
    case 'transferring':
    case 'not_serving':
    case 'not_ready':
    case 'dropped':
    case 'overloaded':
    case 'stopping':
      return 503;
    case 'timeout':
      return 504;
    default:
      return 500;
  }
}
