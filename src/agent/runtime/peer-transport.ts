import type { Logger } from '../../shared/logger';
import type { Result } from '../../shared/protocol';
import type { EngineMessage } from '../consensus/engine';
import { PeerTransport } from '../transport';
import type { AgentConfig } from './config';
import type { PeerEnvelope } from './envelope';

/**
 * A restarted peer must hear from us soon: it catches up over our outbound
 * connection, so the redial delay is capped well below an operator's patience.
 */
const reconnectBackoffMsMax = 1_000;

export async function createPeerTransport<M extends EngineMessage>(options: {
  config: AgentConfig;
  parse: (input: unknown) => Result<PeerEnvelope<M>>;
  logger: Logger;
}): Promise<{ ok: true; transport: PeerTransport<PeerEnvelope<M>>; port: number } | { ok: false; reason: string }> {
  const { config } = options;
  const listening = await PeerTransport.listen<PeerEnvelope<M>>({
    clusterId: config.clusterId,
    nodeId: config.nodeId,
    peers: config.peers.filter((peer) => peer.id !== config.nodeId),
    host: config.bind,
    port: config.peerPort,
    parse: options.parse,
    addressOf: (envelope) => ({ from: envelope.from, to: envelope.to }),
    logger: options.logger,
    ...(config.peerToken === undefined ? {} : { peerToken: config.peerToken }),
    limits: { backoffMsMax: reconnectBackoffMsMax },
  });
  if (!listening.ok) return { ok: false, reason: `cannot listen for peers on ${config.bind}:${config.peerPort}: ${listening.error.message}` };
  return { ok: true, transport: listening.data, port: listening.data.address().port };
}
