import type { Server as HttpServer } from 'node:http';
import { Server as SocketServer } from 'socket.io';
import {
  CommandSchema,
  err,
  parse,
  statusBatchSamplesMax,
  type AgentHello,
  type AgentToHubEvents,
  type CommandAck,
  type HubToAgentEvents,
  type StatusSample,
} from '../../shared/protocol';
import type { Clock, Logger } from '../../shared/logger';
import type { NodeService } from '../runtime/service';
import { accessFor, type Access } from './tokens';

export interface TelemetryOptions {
  service: NodeService;
  tokens: { viewerToken: string; operatorToken: string };
  clock: Clock;
  logger: Logger;
  /** How often status is sampled (10 Hz by default). */
  sampleIntervalMs: number;
  /** How many samples go out in one batch. */
  samplesPerBatch: number;
}

/** Commands are small; anything bigger is not ours. */
const messageBytesMax = 16 * 1024;
const drillCommands = new Set(['drill:run']);

export interface Telemetry {
  close(): Promise<void>;
}

/**
 * The telemetry and control channel: socket.io on the node's HTTP port. A
 * viewer token receives status batches and events; an operator token may
 * also send commands. Every command is validated before it reaches the node.
 */
export function startTelemetry(server: HttpServer, options: TelemetryOptions): Telemetry {
  const { service, clock, logger } = options;
  const io = new SocketServer<HubToAgentEvents, AgentToHubEvents, Record<string, never>, { access: Access }>(server, {
    serveClient: false,
    maxHttpBufferSize: messageBytesMax,
    cors: { origin: false },
  });
  io.use((socket, next) => {
    const access = accessFor((socket.handshake.auth as { token?: unknown }).token, options.tokens);
    if (access === null) {
      logger.warn({ address: socket.handshake.address }, 'telemetry: refused a connection with a missing or wrong token');
      return next(new Error('unauthorized: wrong or missing token'));
    }
    socket.data.access = access;
    next();
  });

  const statusIntervalMs = options.sampleIntervalMs * options.samplesPerBatch;
  io.on('connection', (socket) => {
    const hello: AgentHello = {
      protocolVersion: 1,
      nodeId: service.nodeId,
      clusterId: service.clusterId,
      engine: service.engine,
      access: socket.data.access,
      drillsAllowed: service.drillsAllowed,
      bootId: service.bootId,
      statusIntervalMs,
    };
    socket.emit('agent:hello', hello);
    socket.join('viewers');
    socket.on('command:request', async (first: unknown, second: unknown) => {
      // An emit with an ack but no payload hands us the ack first: it is answered (the payload is missing), not left waiting.
      const payloadMissing = typeof first === 'function' && second === undefined;
      const ack = payloadMissing ? first : second;
      const input = payloadMissing ? undefined : first;
      // Without an ack there is no one to answer, and a command nobody hears the outcome of is not run.
      if (typeof ack !== 'function') return;
      const reply = ack as (answer: CommandAck) => void;
      if (socket.data.access !== 'operator') return reply(err('forbidden', 'commands need the operator token'));
      const command = parse(CommandSchema, input, 'command');
      if (!command.ok) return reply(command);
      if (drillCommands.has(command.data.type) && !service.drillsAllowed) {
        return reply(err('drills_disabled', `drills are disabled on ${service.nodeId}: start the agent with --allow-drills`));
      }
      logger.info({ command: command.data.type }, 'operator command');
      reply(await service.command(command.data));
    });
  });

  const pending: StatusSample[] = [];
  const sampler = setInterval(() => {
    pending.push({ atMs: clock.nowMs(), status: service.status() });
    if (pending.length >= Math.min(options.samplesPerBatch, statusBatchSamplesMax)) {
      io.to('viewers').emit('status:batch', pending.splice(0));
    }
  }, options.sampleIntervalMs);
  const unsubscribe = service.onEvent((event) => io.to('viewers').emit('cluster:event', event));

  return {
    close: async () => {
      clearInterval(sampler);
      unsubscribe();
      io.disconnectSockets(true);
      // io.close() would also close the HTTP server, which belongs to the API.
      await new Promise<void>((resolve) => {
        io.engine.close();
        resolve();
      });
    },
  };
}
