import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { Server as SocketServer } from 'socket.io';
import { bridgeChannels, err, recordingBase64CharsMax, type HubSnapshot, type Result } from '../../shared/protocol';
import type { Logger } from '../../shared/logger';
import type { Hub } from '../hub/hub';

export interface WebServerOptions {
  hub: Hub;
  rendererDir: string;
  host: string;
  port: number;
  logger: Logger;
  /** Fixed only by tests; by default a fresh random session token per start. */
  sessionToken?: string;
}

export interface WebServer {
  /** The URL to open, carrying the session token in the fragment (never sent to the server or logged). */
  url: string;
  port: number;
  close(): Promise<void>;
}

// Room for one dropped .qsrec (base64) in a 'replay:open' request; only an authenticated session may send one.
const bridgeArgBytesMax = recordingBase64CharsMax + 64 * 1024;

function contentSecurityPolicy(host: string, port: number): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self' ws://${host}:${port}`,
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'none'",
  ].join('; ');
}

function tokensEqual(expected: string, presented: unknown): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Web mode: the hub and the built renderer served to a browser on loopback,
 * with the bridge API carried over socket.io instead of Electron IPC. A
 * session token keeps other local users and web pages from driving the hub.
 */
export async function startWebServer(options: WebServerOptions): Promise<Result<WebServer>> {
  const indexFile = path.join(options.rendererDir, 'index.html');
  if (!existsSync(indexFile)) {
    return err('renderer_missing', `no built renderer at ${options.rendererDir}; run \`npm run build\` first`);
  }
  const sessionToken = options.sessionToken ?? randomBytes(24).toString('base64url');
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 1024 });
  let csp = '';
  app.addHook('onSend', async (_request, reply) => {
    reply.header('Content-Security-Policy', csp);
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('Cross-Origin-Opener-Policy', 'same-origin');
  });
  await app.register(fastifyStatic, { root: options.rendererDir, index: ['index.html'] });

  const io = new SocketServer(app.server, { serveClient: false, maxHttpBufferSize: bridgeArgBytesMax });
  io.use((socket, next) => {
    const auth = socket.handshake.auth as { session?: unknown };
    if (tokensEqual(sessionToken, auth.session)) return next();
    options.logger.warn({ address: socket.handshake.address }, 'web bridge: refused a connection without the session token');
    next(new Error('unauthorized: open the URL that `quorumscope web` printed'));
  });
  io.on('connection', (socket) => {
    const subscription = options.hub.subscribe((snapshot: HubSnapshot) => socket.emit(bridgeChannels.snapshot, snapshot));
    socket.on(bridgeChannels.request, async (name: unknown, arg: unknown, ack: unknown) => {
      if (typeof ack !== 'function') return;
      const answer = await options.hub.request(name, arg, subscription);
      (ack as (answer: Result<unknown>) => void)(answer);
    });
    socket.on('disconnect', () => subscription.unsubscribe());
  });

  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    io.close();
    return err('listen_failed', `cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  csp = contentSecurityPolicy(options.host, port);
  return {
    ok: true,
    data: {
      url: `http://${options.host}:${port}/#session=${sessionToken}`,
      port,
      close: async () => {
        io.close();
        await app.close();
      },
    },
  };
}
