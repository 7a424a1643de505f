import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { NodeIdSchema, describeIssues, err, type ErrorInfo, type Result } from '../../shared/protocol';
import type { Logger } from '../../shared/logger';
import { kvKeyLengthMax, kvValueLengthMax, type KvOperation } from '../kv/command';
import { httpStatusFor, type ClientSession, type NodeService } from '../runtime/service';
import { accessFor } from './tokens';

/** Room for the largest CAS (two values) and its JSON quoting, no more. */
export const httpBodyBytesMax = 4 * kvValueLengthMax + 4096;
/**
 * The router measures a key before decoding it: a key of kvKeyLengthMax UTF-16
 * units percent-encodes to at most 9 characters per unit (3 UTF-8 bytes as
 * %XX), so every valid key fits. The length is checked after decoding.
 */
const keyEncodedLengthMax = 9 * kvKeyLengthMax;
const retryAfterSeconds = 1;

const KeySchema = z.string().min(1).max(kvKeyLengthMax);
const PutBodySchema = z.strictObject({ value: z.string().max(kvValueLengthMax) });
const CasBodySchema = z.strictObject({ from: z.string().max(kvValueLengthMax).nullable(), to: z.string().max(kvValueLengthMax) });
const TransferBodySchema = z.strictObject({ to: NodeIdSchema });
const SessionHeadersSchema = z.object({
  'x-client-id': z.string().min(1).max(64),
  'x-client-sequence': z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER),
});

export interface HttpApiOptions {
  service: NodeService;
  tokens: { viewerToken: string; operatorToken: string };
  logger: Logger;
  /** Serves Prometheus text; mounted at /metrics. */
  metrics: () => Promise<{ contentType: string; body: string }>;
}

function sendError(reply: FastifyReply, error: ErrorInfo): FastifyReply {
  const status = httpStatusFor(error.code);
  if (status === 503) reply.header('Retry-After', String(retryAfterSeconds));
  return reply.code(status).send({ error });
}

function bodyOf<T extends z.ZodType>(schema: T, request: FastifyRequest): Result<z.infer<T>> {
  const parsed = schema.safeParse(request.body);
  if (parsed.success) return { ok: true, data: parsed.data };
  return err('invalid_request', `invalid body: ${describeIssues(parsed.error, 'body')}`);
}

function keyOf(request: FastifyRequest): Result<string> {
  const parsed = KeySchema.safeParse((request.params as { key?: unknown }).key);
  if (parsed.success) return { ok: true, data: parsed.data };
  return err('invalid_key', `invalid key: 1 to ${kvKeyLengthMax} characters`);
}

/** Optional client session headers make a retried write apply once. */
function sessionOf(request: FastifyRequest): Result<ClientSession | null> {
  if (request.headers['x-client-id'] === undefined && request.headers['x-client-sequence'] === undefined) return { ok: true, data: null };
  const parsed = SessionHeadersSchema.safeParse(request.headers);
  if (!parsed.success) return err('invalid_request', `invalid client session headers: ${describeIssues(parsed.error, 'headers')}`);
  return { ok: true, data: { clientId: parsed.data['x-client-id'], sequence: parsed.data['x-client-sequence'] } };
}

/**
 * A request Node's HTTP parser refuses (bad method or version, oversize
 * headers, garbage) never reaches Fastify's handlers: answer it here in the
 * API's error shape, then hang up as Node does.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, body]: [number, string, ErrorInfo] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', { code: 'headers_too_large', message: 'the request headers exceed the size limit' }]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', { code: 'timeout', message: 'the request was not received in time' }]
        : [400, 'Bad Request', { code: 'invalid_request', message: 'the request is not valid HTTP/1.1' }];
  const json = JSON.stringify({ error: body });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`);
  }
  socket.destroy();
}

/**
 * The replicated key-value API and the admin API of one node. Handlers
 * validate, then act, then answer; errors are `{ error: { code, message } }`
 * with a status that says what the client should do.
 */
export function createHttpApi(options: HttpApiOptions): FastifyInstance {
  const { service } = options;
  const app = Fastify({
    logger: false,
    bodyLimit: httpBodyBytesMax,
    return503OnClosing: true,
    routerOptions: { maxParamLength: keyEncodedLengthMax },
    // Errors the router raises before any handler runs answer in the API's own shape.
    frameworkErrors: (error, _request, reply) => {
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendError(reply, { code: 'invalid_key', message: `invalid key: 1 to ${kvKeyLengthMax} characters` });
      if (error.code === 'FST_ERR_BAD_URL') return sendError(reply, { code: 'invalid_request', message: 'the URL path is not valid percent-encoded UTF-8' });
      return sendError(reply, { code: 'invalid_request', message: error.message });
    },
    clientErrorHandler: answerClientError,
  });

  app.setErrorHandler((error: { code?: string; statusCode?: number; message: string }, _request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, { code: 'payload_too_large', message: `request body exceeds ${httpBodyBytesMax} bytes` });
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendError(reply, { code: 'unsupported_media_type', message: 'request bodies must be application/json' });
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(reply, { code: 'invalid_request', message: error.message });
    }
    options.logger.error({ error: error.message }, 'http handler failed');
    return sendError(reply, { code: 'internal', message: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }));

  async function write(request: FastifyRequest, reply: FastifyReply, operation: KvOperation) {
    const session = sessionOf(request);
    if (!session.ok) return sendError(reply, session.error);
    const answer = await service.submit(operation, session.data);
    if (!answer.ok) return sendError(reply, answer.error);
    const { output, index } = answer.data;
    switch (output.type) {
      case 'put':
        return reply.send({ index });
      case 'delete':
        return reply.send({ index, deleted: output.existed });
      case 'cas':
        if (output.succeeded) return reply.send({ index });
        return reply.code(409).send({ error: { code: 'cas_mismatch', message: 'the current value differs from "from"' }, current: output.value, index });
      case 'get':
        return reply.send({ index, value: output.value });
    }
  }

  app.put('/v1/kv/:key', async (request, reply) => {
    const key = keyOf(request);
    if (!key.ok) return sendError(reply, key.error);
    const body = bodyOf(PutBodySchema, request);
    if (!body.ok) return sendError(reply, body.error);
    return write(request, reply, { type: 'put', key: key.data, value: body.data.value });
  });

  app.delete('/v1/kv/:key', async (request, reply) => {
    const key = keyOf(request);
    if (!key.ok) return sendError(reply, key.error);
    return write(request, reply, { type: 'delete', key: key.data });
  });

  app.post('/v1/kv/:key/cas', async (request, reply) => {
    const key = keyOf(request);
    if (!key.ok) return sendError(reply, key.error);
    const body = bodyOf(CasBodySchema, request);
    if (!body.ok) return sendError(reply, body.error);
    return write(request, reply, { type: 'cas', key: key.data, expected: body.data.from, value: body.data.to });
  });

  app.get('/v1/kv/:key', async (request, reply) => {
    const key = keyOf(request);
    if (!key.ok) return sendError(reply, key.error);
    const consistency = (request.query as { consistency?: unknown }).consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'local') {
      return sendError(reply, { code: 'invalid_request', message: 'consistency must be "linearizable" or "local"' });
    }
    const answer = await service.read(key.data, consistency === 'linearizable');
    if (!answer.ok) return sendError(reply, answer.error);
    if (answer.data.value === null) return reply.code(404).send({ error: { code: 'not_found', message: `no key "${key.data}"` }, index: answer.data.index });
    return reply.send({ value: answer.data.value, index: answer.data.index });
  });

  app.get('/v1/status', async (_request, reply) => reply.send(service.status()));

  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await options.metrics();
    return reply.header('Content-Type', contentType).send(body);
  });

  app.post('/v1/admin/transfer-leadership', async (request, reply) => {
    const authorization = request.headers.authorization;
    if (authorization === undefined || !authorization.startsWith('Bearer ')) {
      reply.header('WWW-Authenticate', 'Bearer');
      return sendError(reply, { code: 'unauthorized', message: 'the operator token is required (Authorization: Bearer …)' });
    }
    const access = accessFor(authorization.slice('Bearer '.length), options.tokens);
    if (access === null) return sendError(reply, { code: 'unauthorized', message: 'the token is not valid for this cluster' });
    if (access !== 'operator') return sendError(reply, { code: 'forbidden', message: 'transferring leadership needs the operator token' });
    const body = bodyOf(TransferBodySchema, request);
    if (!body.ok) return sendError(reply, body.error);
    const answer = await service.command({ type: 'leadership:transfer', to: body.data.to });
    if (!answer.ok) return sendError(reply, answer.error);
    return reply.send({ leader: body.data.to, detail: answer.data.detail });
  });

  return app;
}
