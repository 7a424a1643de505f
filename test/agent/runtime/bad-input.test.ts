import { METHODS } from 'node:http';
import { connect as connectTcp } from 'node:net';
import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { io as connectSocket, type Socket as ClientSocket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpBodyBytesMax } from '../../../src/agent/api/http';
import { raftFactory } from '../../../src/agent/consensus/raft';
import { kvKeyLengthMax, kvValueLengthMax } from '../../../src/agent/kv/command';
import { envelopeParser, forwardedCommandBytesMax } from '../../../src/agent/runtime/envelope';
import { FrameReader, FrameType, decodeFrameBody, encodeFrame, frameHeaderBytes, peerProtocolVersion } from '../../../src/agent/transport/frame';
import { transportLimitsDefault } from '../../../src/agent/transport/peer-transport';
import { CommandSchema, type CommandAck, type NodeStatus } from '../../../src/shared/protocol';
import { getWithRetry, httpJson, putWithRetry, sleep, startTestCluster, type TestCluster } from './harness';

/**
 * Bad input against real agents on loopback: random and mutated HTTP
 * requests, socket.io handshakes and commands, and peer frames. Each must get
 * a clear refusal, and none may crash an agent, move leadership, change data
 * or put a token in a log. The cluster starts without --allow-drills.
 *
 * Every property runs a bounded number of times from a fixed seed; fast-check
 * prints the seed and path of a failure, and QUORUMSCOPE_FUZZ_SEED replays or
 * varies it; QUORUMSCOPE_FUZZ_SCALE=10 runs ten times as many cases.
 */
const seed = Number(process.env.QUORUMSCOPE_FUZZ_SEED ?? 20_260_127);
/** QUORUMSCOPE_FUZZ_SCALE multiplies every run count, for a longer hunt than CI affords. */
const runsScale = Number(process.env.QUORUMSCOPE_FUZZ_SCALE ?? 1);
function runs<T>(numRuns: number): fc.Parameters<T> {
  // Shrinking against real processes is slow: stop it, not the report, after 30 s.
  return { seed, numRuns: Math.max(1, Math.round(numRuns * runsScale)), interruptAfterTimeLimit: 30_000, markInterruptAsFailure: false };
}

const knownKey = 'bad-input/known';
const knownValue = 'untouched ✓';
const jsonContentTypes = ['application/json', 'application/json; charset=utf-8'];

interface ErrorBody {
  error: { code: string; message: string };
}

/** The one error shape of the HTTP API: a code and one plain line a person can read. */
function expectErrorBody(body: unknown, context: string): asserts body is ErrorBody {
  const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
  expect(typeof error?.code, `${context}: error.code in ${JSON.stringify(body).slice(0, 300)}`).toBe('string');
  expect(typeof error?.message, `${context}: error.message`).toBe('string');
  const message = error?.message as string;
  expect(message.length, `${context}: message is not empty`).toBeGreaterThan(0);
  expect(message, `${context}: message has no stack trace`).not.toMatch(/\n\s+at /);
}

describe('real agents under bad input', () => {
  let cluster: TestCluster;
  let leader: string;
  let epoch: number;
  /** Everything the agents wrote to stderr, uncapped (the harness keeps the last 2,000 lines). */
  const stderr: string[] = [];
  let writes = 0;

  async function statusOf(id: string): Promise<NodeStatus> {
    const status = await cluster.status(id);
    if (status === null) throw new Error(`${id} does not answer /v1/status`);
    return status;
  }

  /** The cluster after an attack: every node answers, the leader and its term stand, data is intact, writes work. */
  async function expectClusterUnharmed(): Promise<void> {
    for (const id of cluster.ids()) {
      const status = await statusOf(id);
      expect(status.leader, `${id} sees the same leader`).toBe(leader);
      expect(status.epoch, `${id} is in the same term`).toBe(epoch);
    }
    for (const id of cluster.ids()) {
      const known = await getWithRetry(cluster.http(id), knownKey);
      expect(known.status, `${knownKey} through ${id}`).toBe(200);
      expect(known.body.value).toBe(knownValue);
    }
    writes += 1;
    await putWithRetry(cluster, `bad-input/after-${writes}`, 'accepted');
  }

  beforeAll(async () => {
    cluster = await startTestCluster({ nodes: 3, allowDrills: false, tickIntervalMs: 20 });
    for (const child of cluster.cluster.children.values()) child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    leader = await cluster.waitForLeader();
    await putWithRetry(cluster, knownKey, knownValue);
    // Every node must have applied the known key before the attacks start.
    for (const id of cluster.ids()) expect((await getWithRetry(cluster.http(id), knownKey)).body.value).toBe(knownValue);
    epoch = (await statusOf(leader)).epoch;
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  const nodeIndex = fc.integer({ min: 0, max: 2 });
  const nodeAt = (index: number) => cluster.ids()[index] ?? 'n1';

  // ---- HTTP ------------------------------------------------------------------

  describe('the HTTP API', () => {
    /**
     * A key as a client means it, not yet encoded: unicode, reserved characters, too long or empty.
     * Not "." or "..": URL normalisation turns those into another path (the mangled-path property has them).
     */
    const key = fc
      .oneof(
        fc.string({ minLength: 0, maxLength: 40 }),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
        fc.constantFrom('/', '?', '#', '%', '%2F', ' ', '...', '.a', 'a/b', '\u0000', 'k'.repeat(kvKeyLengthMax), 'k'.repeat(kvKeyLengthMax + 1)),
        fc.integer({ min: 1, max: kvKeyLengthMax + 50 }).map((length) => 'é'.repeat(length)),
        fc.integer({ min: 90, max: kvKeyLengthMax + 50 }).map((length) => 'k'.repeat(length)),
      )
      .filter((candidate) => candidate !== knownKey && candidate !== '.' && candidate !== '..' && canEncode(candidate));
    const sessionHeaders: fc.Arbitrary<Record<string, string>> = fc.oneof(
      { arbitrary: fc.constant({}), weight: 4 },
      { arbitrary: fc.constant({ 'x-client-id': 'unique', 'x-client-sequence': '1' }), weight: 2 },
      fc.record({ 'x-client-id': fc.constantFrom('', 'c'.repeat(65), 'client') }),
      fc.record({ 'x-client-sequence': fc.constantFrom('1', '0') }),
      fc.record({ 'x-client-id': fc.constant('client'), 'x-client-sequence': fc.constantFrom('0', '-1', 'abc', '1.5', '', '9007199254740993', 'Infinity') }),
    );
    const value = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 30 }));
    /** Bodies around the valid ones: right, wrong types, extra and missing fields, not JSON at all. */
    const body = fc.oneof(
      { arbitrary: value.map((text) => JSON.stringify({ value: text })), weight: 4 },
      { arbitrary: fc.record({ from: fc.option(value), to: value }).map((cas) => JSON.stringify(cas)), weight: 4 },
      fc.jsonValue({ maxDepth: 3 }).map((json) => JSON.stringify(json)),
      fc.record({ value: fc.jsonValue({ maxDepth: 2 }) }).map((json) => JSON.stringify(json)),
      fc.record({ value, extra: fc.jsonValue({ maxDepth: 1 }) }).map((json) => JSON.stringify(json)),
      fc.constantFrom('', '{', '{"value":', 'null', '[]', '{"__proto__":{"value":"x"}}', '{"constructor":{"prototype":{}}}', '{"value":"a","value":5}'),
      fc.string({ maxLength: 60 }),
      value.map((text) => JSON.stringify({ value: text })).map((json) => json.slice(0, -1)),
    );
    const contentType = fc.oneof(
      { arbitrary: fc.constantFrom(...jsonContentTypes), weight: 4 },
      fc.constantFrom('text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data; boundary=x', 'application/jsonx', ''),
      fc.string({ unit: 'grapheme-ascii', maxLength: 30 }).filter((text) => /^[\x21-\x7e]*$/.test(text)),
    );
    const consistency = fc.option(fc.oneof(fc.constantFrom('linearizable', 'local', 'LOCAL', ''), fc.string({ maxLength: 10 })), { nil: undefined });
    const endpoint: fc.Arbitrary<{ method: string; route: string }> = fc.oneof(
      { arbitrary: fc.constantFrom({ method: 'GET', route: 'kv' }, { method: 'PUT', route: 'kv' }, { method: 'DELETE', route: 'kv' }, { method: 'POST', route: 'cas' }), weight: 4 },
      fc.record({ method: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH'), route: fc.constantFrom('kv', 'cas') }),
    );
    const structuredRequest = fc.record({
      endpoint,
      key,
      consistency,
      duplicateConsistency: fc.boolean(),
      contentType,
      body,
      session: sessionHeaders,
      node: nodeIndex,
    });
    type StructuredRequest = Omit<typeof structuredRequest extends fc.Arbitrary<infer T> ? T : never, 'endpoint'> & { method: string; route: string };
    const request = structuredRequest.map(({ endpoint: { method, route }, ...rest }): StructuredRequest => ({ ...rest, method, route }));

    /** What a correct agent accepts, from the API's documented rules, so that a 2xx can be checked. */
    function isValid(request: StructuredRequest): boolean {
      const keyValid = request.key.length >= 1 && request.key.length <= kvKeyLengthMax;
      if (!keyValid) return false;
      const routeMethod = request.route === 'cas' ? ['POST'] : ['GET', 'PUT', 'DELETE'];
      if (!routeMethod.includes(request.method)) return false;
      if (request.method === 'GET') {
        const values = [...(request.consistency === undefined ? [] : [request.consistency]), ...(request.duplicateConsistency ? ['local'] : [])];
        return values.length === 0 || (values.length === 1 && ['linearizable', 'local'].includes(values[0] ?? ''));
      }
      if (!sessionValid(request.session)) return false;
      if (request.method === 'DELETE') return true;
      if (!jsonContentTypes.includes(request.contentType)) return false;
      let parsed: unknown;
      try {
        parsed = JSON.parse(request.body);
      } catch {
        return false;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false;
      const fields = Object.keys(parsed).sort().join(',');
      const record = parsed as Record<string, unknown>;
      if (request.method === 'PUT') return fields === 'value' && typeof record.value === 'string' && record.value.length <= kvValueLengthMax;
      return fields === 'from,to' && typeof record.to === 'string' && (record.from === null || typeof record.from === 'string');
    }

    function sessionValid(session: Record<string, string>): boolean {
      const id = session['x-client-id'];
      const sequence = session['x-client-sequence'];
      if (id === undefined && sequence === undefined) return true;
      if (id === undefined || sequence === undefined || id.length < 1 || id.length > 64) return false;
      const number = Number(sequence);
      return Number.isInteger(number) && number > 0 && number <= Number.MAX_SAFE_INTEGER;
    }

    let sessions = 0;
    async function send(request: StructuredRequest) {
      const path = `/v1/kv/${encodeURIComponent(request.key)}${request.route === 'cas' ? '/cas' : ''}`;
      const query = new URLSearchParams();
      if (request.consistency !== undefined) query.append('consistency', request.consistency);
      if (request.duplicateConsistency) query.append('consistency', 'local');
      const session = { ...request.session };
      // A fresh client per valid session, so that a retry never meets an earlier sequence.
      if (session['x-client-id'] === 'unique') session['x-client-id'] = `fuzz-${seed}-${(sessions += 1)}`;
      const hasBody = request.method !== 'GET' && request.method !== 'DELETE';
      const headers: Record<string, string> = { ...session };
      if (hasBody && request.contentType !== '') headers['content-type'] = request.contentType;
      const search = query.size > 0 ? `?${query.toString()}` : '';
      return httpJson(`${cluster.http(nodeAt(request.node))}${path}${search}`, { method: request.method, headers, body: hasBody ? request.body : undefined });
    }

    it('answers random requests around the KV API with 2xx only when they are valid, and a 4xx JSON error otherwise', async () => {
      const seen = { valid: 0, invalid: 0 };
      await fc.assert(
        fc.asyncProperty(request, async (request) => {
          const answer = await send(request);
          const context = `${request.method} ${JSON.stringify(request.key).slice(0, 80)} → ${answer.status}`;
          const valid = isValid(request);
          seen[valid ? 'valid' : 'invalid'] += 1;
          if (valid) {
            const expected = request.method === 'GET' ? [200, 404] : request.route === 'cas' ? [200, 409] : [200];
            expect(expected, `${context} ${JSON.stringify(answer.body).slice(0, 200)}`).toContain(answer.status);
            if (answer.status !== 200) expectErrorBody(answer.body, context);
          } else {
            expect(answer.status, `${context}: an invalid request is the client's fault`).toBeGreaterThanOrEqual(400);
            expect(answer.status, `${context}: ${JSON.stringify(answer.body).slice(0, 200)}`).toBeLessThan(500);
            expectErrorBody(answer.body, context);
          }
        }),
        runs(150),
      );
      // Both halves of the oracle ran often enough to mean something.
      expect(seen.valid, JSON.stringify(seen)).toBeGreaterThan((seen.valid + seen.invalid) / 10);
      expect(seen.invalid, JSON.stringify(seen)).toBeGreaterThan((seen.valid + seen.invalid) / 10);
      await expectClusterUnharmed();
    });

    it('stores and returns any key of 1 to the maximum length, however it must be percent-encoded', async () => {
      const validKey = fc
        .oneof(
          fc.integer({ min: 1, max: kvKeyLengthMax }).chain((length) => fc.string({ unit: 'binary', minLength: length, maxLength: length })),
          fc.integer({ min: 1, max: kvKeyLengthMax }).chain((length) => fc.string({ unit: fc.constantFrom('é', '€', 'k', '/', '%'), minLength: length, maxLength: length })),
          fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }),
        )
        .filter((candidate) => candidate.length <= kvKeyLengthMax && candidate !== '.' && candidate !== '..' && candidate !== knownKey && canEncode(candidate));
      await fc.assert(
        fc.asyncProperty(validKey, nodeIndex, async (candidate, node) => {
          const base = cluster.http(nodeAt(node));
          const url = `${base}/v1/kv/${encodeURIComponent(candidate)}`;
          const written = await httpJson(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: candidate }) });
          expect(written.status, `PUT ${JSON.stringify(candidate).slice(0, 60)} (${candidate.length} characters): ${JSON.stringify(written.body).slice(0, 200)}`).toBe(200);
          const read = await httpJson(url);
          expect(read.status).toBe(200);
          expect(read.body.value).toBe(candidate);
        }),
        runs(20),
      );
    });

    /** Methods fetch may send (it refuses CONNECT, TRACE and TRACK; HEAD has no body to check). */
    const method = fc.constantFrom(...METHODS.filter((name) => !['CONNECT', 'TRACE', 'TRACK', 'HEAD'].includes(name)));
    const pathSegment = fc.oneof(
      fc.constantFrom('v1', 'kv', 'status', 'metrics', 'admin', 'cas', 'transfer-leadership', '', '..', '.', '%', '%ZZ', '%E0%A4%A', '%00', '%2F', '%C0%AF', '%ED%A0%80', '%F4%90%80%80'),
      fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).map((text) => text.replace(/[#?]/g, '')),
      fc.string({ unit: 'binary', maxLength: 8 }).filter(canEncode).map((text) => encodeURIComponent(text)),
      fc.integer({ min: 101, max: 3_000 }).map((length) => 'p'.repeat(length)),
    );
    const mangledPath = fc.oneof(
      fc.array(pathSegment, { minLength: 1, maxLength: 5 }).map((segments) => `/${segments.join('/')}`),
      fc.array(pathSegment, { minLength: 1, maxLength: 2 }).map((segments) => `/v1/kv/${segments.join('/')}`),
      pathSegment.map((segment) => `/v1/kv/${segment}/cas`),
    );
    const queryString = fc.oneof(
      fc.constant(''),
      fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map((text) => `?${text.replace(/#/g, '')}`),
      fc.constantFrom('?consistency=local', '?consistency[]=local', '?consistency=%ZZ', '?%ZZ', '?consistency=local&consistency=linearizable', '?&&&=', `?${'q'.repeat(4_000)}=1`),
    );

    it('answers random methods, paths and query strings with a JSON error, never a 500', async () => {
      await fc.assert(
        fc.asyncProperty(method, mangledPath, queryString, contentType, body, nodeIndex, async (verb, path, query, type, text, node) => {
          const withBody = verb !== 'GET';
          const answer = await httpJson(`${cluster.http(nodeAt(node))}${path}${query}`, {
            method: verb,
            headers: withBody && type !== '' ? { 'content-type': type } : {},
            body: withBody ? text : undefined,
          });
          const context = `${verb} ${path.slice(0, 120)}${query.slice(0, 60)} → ${answer.status}`;
          expect(answer.status, context).not.toBe(500);
          if (answer.status >= 400) expectErrorBody(answer.body, context);
          // Only the routes that exist may succeed (fetch normalises the path as a server would see it).
          else expect(new URL(path, 'http://x').pathname, context).toMatch(/^\/(v1\/kv\/|v1\/status$|metrics$)/);
        }),
        runs(120),
      );
      await expectClusterUnharmed();
    });

    it('refuses bodies larger than the limit with 413, with or without a declared length', async () => {
      const oversize = fc.record({
        bytes: fc.integer({ min: httpBodyBytesMax + 1, max: httpBodyBytesMax * 3 }),
        type: fc.constantFrom(...jsonContentTypes, 'text/plain'),
        chunked: fc.boolean(),
        node: nodeIndex,
      });
      await fc.assert(
        fc.asyncProperty(oversize, async ({ bytes, type, chunked, node }) => {
          const text = JSON.stringify({ value: 'v'.repeat(bytes) });
          const payload = new TextEncoder().encode(text);
          const answer = await httpJson(`${cluster.http(nodeAt(node))}/v1/kv/huge`, {
            method: 'PUT',
            headers: { 'content-type': type },
            body: chunked ? streamOf(payload) : text,
            ...(chunked ? { duplex: 'half' } : {}),
          } as RequestInit).catch((error: unknown) => ({ status: 0, body: { text: String(error) } as Record<string, unknown> }));
          // A server may hang up on an oversize stream before the client finished sending it.
          if (answer.status === 0 && chunked) return;
          expect(answer.status, JSON.stringify(answer.body).slice(0, 200)).toBe(413);
          expectErrorBody(answer.body, '413');
          expect(answer.body.error.code).toBe('payload_too_large');
        }),
        runs(8),
      );
      expect((await httpJson(`${cluster.http('n1')}/v1/kv/huge?consistency=local`)).status).toBe(404);
    });

    it('answers an unsupported content type with 415', async () => {
      for (const type of ['application/xml', 'application/octet-stream', 'image/png']) {
        const answer = await httpJson(`${cluster.http('n1')}/v1/kv/typed`, { method: 'PUT', headers: { 'content-type': type }, body: '{"value":"x"}' });
        expect(answer.status, type).toBe(415);
        expectErrorBody(answer.body, type);
      }
    });

    it('answers malformed HTTP (bad method, bad version, oversize headers, garbage) with a JSON error or a hang-up', async () => {
      const garbage = fc.oneof(
        fc.constantFrom(
          'FOO /v1/status HTTP/1.1\r\nHost: x\r\n\r\n',
          'GET /v1/status HTTP/9.9\r\nHost: x\r\n\r\n',
          `GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(20_000)}\r\n\r\n`,
          'PUT /v1/kv/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
          'PUT /v1/kv/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n',
          'GET /v1/status HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
        ),
        fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => `${Buffer.from(bytes).toString('latin1')}\r\n\r\n`),
      );
      await fc.assert(
        fc.asyncProperty(garbage, nodeIndex, async (request, node) => {
          const response = await rawExchange(cluster.http(nodeAt(node)), Buffer.from(request, 'latin1'));
          if (response === '') return;
          const [head = '', ...rest] = response.split('\r\n\r\n');
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
          expect(status, head).toBeGreaterThanOrEqual(400);
          expect(status, head).toBeLessThan(500);
          expectErrorBody(JSON.parse(rest.join('\r\n\r\n')) as unknown, head);
        }),
        runs(30),
      );
      await expectClusterUnharmed();
    });
  });

  // ---- admin -----------------------------------------------------------------

  describe('the admin API', () => {
    it('refuses missing, malformed, wrong and viewer tokens with 401 or 403 and never moves leadership', async () => {
      const operator = cluster.cluster.file.operatorToken;
      const viewer = cluster.cluster.file.viewerToken;
      const printable = (text: string) => /^[\x20-\x7e]*$/.test(text);
      const mutatedToken = fc.oneof(
        fc.constantFrom(operator, viewer).chain((token) =>
          fc.oneof(
            fc.nat({ max: token.length - 1 }).map((at) => token.slice(0, at)),
            fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 4 }).map((suffix) => `${token}${suffix}`),
            fc.nat({ max: token.length - 1 }).map((at) => `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`),
            fc.constant(token.toUpperCase()),
            fc.constant(` ${token}`),
          ),
        ),
        fc.string({ unit: 'grapheme-ascii', maxLength: 60 }),
        fc.constant('x'.repeat(600)),
      );
      const authorization = fc.oneof(
        fc.constant(undefined),
        fc.constantFrom('', 'Bearer', 'Bearer ', 'bearer', 'Basic dXNlcjpwYXNz', 'Token abc', `Bearer ${viewer}`, `Basic ${operator}`, `bearer ${operator}`, `Bearer  ${operator}`, `Bearer ${operator} ${operator}`, `${operator}`),
        mutatedToken.map((token) => `Bearer ${token}`),
        fc.tuple(fc.constantFrom('Bearer', 'Basic', 'Digest', 'X'), mutatedToken).map(([scheme, token]) => `${scheme} ${token}`),
      );
      const followers = cluster.ids().filter((id) => id !== leader);
      await fc.assert(
        fc.asyncProperty(
          authorization.filter((header) => header === undefined || (printable(header) && header.trim() !== `Bearer ${operator}`)),
          fc.constantFrom(...followers),
          nodeIndex,
          async (header, target, node) => {
            const answer = await httpJson(`${cluster.http(nodeAt(node))}/v1/admin/transfer-leadership`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', ...(header === undefined ? {} : { authorization: header }) },
              body: JSON.stringify({ to: target }),
            });
            const context = `Authorization ${JSON.stringify(header)?.slice(0, 40)} → ${answer.status}`;
            expect(answer.status, context).toBe(header?.trim() === `Bearer ${viewer}` ? 403 : 401);
            expectErrorBody(answer.body, context);
            expect(answer.body.error.code).toBe(answer.status === 403 ? 'forbidden' : 'unauthorized');
            const echoed = JSON.stringify(answer.body);
            expect(echoed.includes(operator) || echoed.includes(viewer), `${context}: a token is echoed`).toBe(false);
          },
        ),
        runs(60),
      );
      // A refused transfer that slipped through would show within a few election timeouts.
      await sleep(500);
      await expectClusterUnharmed();
    });
  });

  // ---- socket.io ---------------------------------------------------------------

  describe('the telemetry channel', () => {
    const sockets = new Set<ClientSocket>();
    afterAll(() => {
      for (const socket of sockets) socket.close();
    });

    function open(node: string, auth: Record<string, unknown> | undefined): ClientSocket {
      const socket = connectSocket(cluster.http(node), { auth, transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5_000 });
      sockets.add(socket);
      socket.on('disconnect', () => sockets.delete(socket));
      return socket;
    }

    /** How a handshake ends: connected, refused with a message, or the transport hung up. */
    function handshake(node: string, auth: Record<string, unknown> | undefined): Promise<string> {
      const socket = open(node, auth);
      return new Promise<string>((resolve) => {
        socket.once('connect', () => resolve('connected'));
        socket.once('connect_error', (error) => resolve(`connect_error: ${error.message}`));
        socket.once('disconnect', (reason) => resolve(`disconnect: ${reason}`));
      }).finally(() => {
        socket.close();
        sockets.delete(socket);
      });
    }

    async function connected(node: string, token: string): Promise<ClientSocket> {
      const socket = open(node, { token });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      });
      return socket;
    }

    function command(socket: ClientSocket, payload: unknown): Promise<CommandAck> {
      return socket.timeout(5_000).emitWithAck('command:request', payload) as Promise<CommandAck>;
    }

    it('refuses handshakes with no, wrong, huge or non-string tokens as unauthorized', async () => {
      const { operatorToken, viewerToken } = cluster.cluster.file;
      const token = fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.string({ unit: 'binary', minLength: 500, maxLength: 600 }),
        fc.integer({ min: 1_000, max: 12_000 }).map((length) => operatorToken.repeat(Math.ceil(length / operatorToken.length)).slice(0, length)),
        fc.constantFrom(operatorToken, viewerToken).chain((real) =>
          fc.oneof(
            fc.constant(real.slice(1)),
            fc.constant(`${real} `),
            fc.constant(real.toUpperCase()),
            fc.constant([real]),
            fc.constant({ token: real }),
            fc.constant({ toString: real }),
            fc.constant(Buffer.from(real)),
          ),
        ),
        fc.integer(),
        fc.double(),
        fc.boolean(),
        fc.constant(null),
        fc.jsonValue({ maxDepth: 2 }),
      );
      const auth: fc.Arbitrary<Record<string, unknown> | undefined> = fc.oneof(
        fc.constant(undefined),
        fc.constant({}),
        token.map((value) => ({ token: value })),
        token.map((value) => ({ Token: operatorToken, authorization: `Bearer ${operatorToken}`, tok: value })),
      );
      await fc.assert(
        fc.asyncProperty(
          auth.filter((candidate) => candidate?.token !== operatorToken && candidate?.token !== viewerToken),
          nodeIndex,
          async (candidate, node) => {
            expect(await handshake(nodeAt(node), candidate)).toBe('connect_error: unauthorized: wrong or missing token');
          },
        ),
        runs(50),
      );
    });

    it('hangs up on a handshake larger than the message limit without ever connecting', async () => {
      const outcome = await handshake('n1', { token: cluster.cluster.file.operatorToken.repeat(3_000) });
      expect(outcome).not.toBe('connected');
    });

    /** Valid commands of every kind, as the schema allows them. */
    const nodeId = fc.constantFrom('n1', 'n2', 'n3', 'n9');
    const drill = fc.oneof(
      fc.record({ kind: fc.constant('pause'), durationMs: fc.option(fc.integer({ min: 1, max: 600_000 })) }),
      fc.record({ kind: fc.constant('resume') }),
      fc.record({ kind: fc.constant('isolate'), peers: fc.option(fc.array(nodeId, { maxLength: 3 })) }),
      fc.record({ kind: fc.constant('heal') }),
      fc.record({ kind: fc.constantFrom('slow-disk', 'slow-network'), delayMs: fc.integer({ min: 0, max: 60_000 }) }),
      fc.record({ kind: fc.constant('corrupt'), target: fc.constantFrom('segment', 'snapshot'), fault: fc.constantFrom('bit-flip', 'zero-sector', 'truncate', 'misdirect', 'stale') }),
    );
    const validCommand = fc.oneof(
      fc.record({ type: fc.constant('leadership:transfer'), to: nodeId }),
      fc.record({ type: fc.constant('leadership:step-down') }),
      fc.record({ type: fc.constant('member:add'), node: fc.constant('n9'), peerAddress: fc.constant('127.0.0.1:1'), learner: fc.boolean() }),
      fc.record({ type: fc.constant('member:remove'), node: fc.constant('n9') }),
      fc.record({ type: fc.constant('scrub:start') }),
      fc.record({ type: fc.constant('drill:run'), drill }),
    );

    it('answers every command on a viewer connection with forbidden, valid or not', async () => {
      const socket = await connected(leader, cluster.cluster.file.viewerToken);
      await fc.assert(
        fc.asyncProperty(fc.oneof(validCommand, fc.jsonValue({ maxDepth: 2 })), async (payload) => {
          const answer = await command(socket, payload);
          expect(answer.ok).toBe(false);
          if (!answer.ok) expect(answer.error.code).toBe('forbidden');
        }),
        runs(40),
      );
      socket.close();
      await expectClusterUnharmed();
    });

    /** Values no field of the schema accepts in that place, JSON-safe (NaN is not) and binary. */
    const wrongValue = fc.oneof(
      fc.constantFrom(1e12, -1, 0.5, 2 ** 53 + 2, -1e308, '5', '', 'n1 ', 'x'.repeat(300), true, null, [], {}, ['n1'], { kind: 'heal' }),
      fc.string({ maxLength: 8 }).map((text) => `${text}!`),
      fc.integer({ min: -1_000_000, max: -1 }),
      fc.integer({ min: 600_001, max: Number.MAX_SAFE_INTEGER }),
      fc.constant(Buffer.from('bytes')),
    );
    interface Mutation {
      payload: unknown;
      /** The field the error must name, from the root: `command.drill.delayMs`. */
      field: string;
    }
    const mutation: fc.Arbitrary<Mutation> = fc
      .tuple(validCommand, fc.nat(), fc.oneof(fc.constant('replace'), fc.constant('delete')), wrongValue, fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }))
      .map(([valid, pick, how, replacement, extra]) => {
        const paths = leafPaths(valid);
        const path = paths[pick % paths.length] ?? ['type'];
        const payload = mutateAt({ ...extra, ...structuredClone(valid) }, path, how === 'delete' ? deleted : replacement);
        return { payload, field: ['command', ...path].join('.') };
      })
      .filter(({ payload }) => !CommandSchema.safeParse(roundTripJson(payload)).success);

    it('answers malformed operator commands with invalid_payload naming the field', async () => {
      const socket = await connected(leader, cluster.cluster.file.operatorToken);
      await fc.assert(
        fc.asyncProperty(mutation, async ({ payload, field }) => {
          const answer = await command(socket, payload);
          expect(answer.ok, JSON.stringify(payload)).toBe(false);
          if (answer.ok) return;
          expect(answer.error.code, `${JSON.stringify(payload)}: ${answer.error.message}`).toBe('invalid_payload');
          // A wrong discriminator is reported on the discriminator, whatever else the object holds.
          expect(answer.error.message, JSON.stringify(payload)).toContain(field);
        }),
        runs(80),
      );
      const whole = fc.oneof(fc.constantFrom(null, 'x', 5, true, [], [{ type: 'scrub:start' }]), fc.constant(Buffer.from('{}')));
      await fc.assert(
        fc.asyncProperty(whole, async (payload) => {
          const answer = await command(socket, payload);
          expect(answer).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
          if (!answer.ok) expect(answer.error.message).toContain('command');
        }),
        runs(10),
      );
      socket.close();
      await expectClusterUnharmed();
    });

    it('refuses every drill with drills_disabled on an agent started without --allow-drills', async () => {
      const socket = await connected(nodeAt(1), cluster.cluster.file.operatorToken);
      await fc.assert(
        fc.asyncProperty(drill, async (body) => {
          expect(await command(socket, { type: 'drill:run', drill: body })).toMatchObject({ ok: false, error: { code: 'drills_disabled' } });
        }),
        runs(30),
      );
      socket.close();
      for (const id of cluster.ids()) expect((await statusOf(id)).activeDrills).toEqual([]);
    });

    it('ignores commands sent without an ack callback, and unknown events, and keeps the connection', async () => {
      const socket = await connected(leader, cluster.cluster.file.operatorToken);
      const follower = cluster.ids().find((id) => id !== leader) ?? 'n2';
      // Commands that would show if they ran: leadership moves or a drill becomes active.
      const visible = fc.oneof(
        fc.record({ type: fc.constant('leadership:transfer'), to: fc.constant(follower) }),
        fc.record({ type: fc.constant('leadership:step-down') }),
        fc.record({ type: fc.constant('drill:run'), drill }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(visible, mutation.map(({ payload }) => payload)),
          fc.string({ minLength: 1, maxLength: 20 }).filter((name) => !['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'].includes(name)),
          fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
          async (payload, event, args) => {
            socket.emit('command:request', payload);
            socket.emit(event as 'command:request', ...(args as [unknown, never]));
          },
        ),
        runs(30),
      );
      // A transfer with no ack must not happen either.
      socket.emit('command:request', { type: 'leadership:transfer', to: follower });
      expect(socket.connected).toBe(true);
      expect(await command(socket, { type: 'leadership:transfer', to: 5 })).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
      socket.close();
      await sleep(500);
      await expectClusterUnharmed();
    });

    it('answers a command that has an ack but no payload with invalid_payload', async () => {
      const socket = await connected(leader, cluster.cluster.file.operatorToken);
      const answer = (await socket.timeout(5_000).emitWithAck('command:request')) as CommandAck;
      expect(answer).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
      if (!answer.ok) expect(answer.error.message).toContain('command');
      socket.close();
    });

    it('disconnects a client whose message exceeds the size limit, and serves the next one', async () => {
      const socket = await connected(leader, cluster.cluster.file.operatorToken);
      const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
      socket.emit('command:request', { type: 'leadership:transfer', to: 'n'.repeat(64 * 1024) }, () => {});
      expect(await disconnected).toBe('transport close');
      const next = await connected(leader, cluster.cluster.file.operatorToken);
      expect(await command(next, { type: 'nope' })).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
      next.close();
    });
  });

  // ---- peer TCP ----------------------------------------------------------------

  describe('the peer port', () => {
    const frameBytesMax = transportLimitsDefault.frameBytesMax;
    const parseEnvelope = envelopeParser(raftFactory.parseMessage);

    function peerPort(id: string): number {
      const node = cluster.cluster.file.nodes.find((candidate) => candidate.id === id);
      return Number(node?.peer.split(':')[1]);
    }

    /** Roles for one attack: the follower attacked, the other follower impersonated, the leader. */
    function roles(): { target: string; impersonated: string; leader: string } {
      const [target = 'n2', impersonated = 'n3'] = cluster.ids().filter((id) => id !== leader);
      return { target, impersonated, leader };
    }

    function frame(type: number, payload: Buffer): Buffer {
      const body = Buffer.concat([Buffer.from([type]), payload]);
      const header = Buffer.alloc(frameHeaderBytes);
      header.writeUInt32LE(body.length, 0);
      header.writeUInt32LE(crc32c(body) >>> 0, 4);
      return Buffer.concat([header, body]);
    }

    /** The same frame with another type byte and a CRC that matches again. */
    function retype(bytes: Buffer, type: number): Buffer {
      return frame(type, bytes.subarray(frameHeaderBytes + 1));
    }

    function hello(from: string, overrides: Record<string, unknown> = {}): Buffer {
      return encodeFrame(FrameType.hello, { clusterId: cluster.cluster.file.clusterId, from, protocolVersion: peerProtocolVersion, token: cluster.cluster.file.peerToken, ...overrides });
    }

    /**
     * Sends `bytes` in one write and waits for the agent to hang up (we never do).
     * Returns the frames the agent sent: its hello, if it accepted ours, and its
     * close reason.
     */
    async function attack(id: string, bytes: Buffer): Promise<{ closed: boolean; hello: boolean; reason: string | null }> {
      const socket = connectTcp({ host: '127.0.0.1', port: peerPort(id) });
      const reader = new FrameReader(frameBytesMax);
      let helloReceived = false;
      let reason: string | null = null;
      socket.on('data', (chunk: Buffer) => {
        const output = reader.push(chunk);
        if (!output.ok) return;
        for (const body of output.bodies) {
          const decoded = decodeFrameBody(body);
          if (!decoded.ok) continue;
          if (decoded.frame.type === 'hello') helloReceived = true;
          if (decoded.frame.type === 'close') reason = decoded.frame.reason;
        }
      });
      socket.on('error', () => {});
      socket.on('connect', () => socket.write(bytes));
      const closed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 3_000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      socket.destroy();
      return { closed, hello: helloReceived, reason };
    }

    it('hangs up on random bytes, bad CRCs, oversize lengths and bodies that are not msgpack', async () => {
      const randomBytes = fc.uint8Array({ minLength: frameHeaderBytes, maxLength: 2_048 }).filter((bytes) => {
        // A length the agent must wait for would only end at the handshake timeout: not this case.
        const declared = Buffer.from(bytes).readUInt32LE(0);
        return declared < 2 || declared > frameBytesMax || declared <= bytes.length - frameHeaderBytes;
      });
      const badCrc = fc.tuple(fc.uint8Array({ minLength: 2, maxLength: 512 }), fc.integer({ min: 1, max: 0xffffffff })).map(([body, flip]) => {
        const bytes = frame(FrameType.hello, Buffer.from(body));
        bytes.writeUInt32LE((bytes.readUInt32LE(4) ^ flip) >>> 0, 4);
        return bytes;
      });
      const oversize = fc.integer({ min: frameBytesMax + 1, max: 0xffffffff }).map((length) => {
        const header = Buffer.alloc(frameHeaderBytes + 16);
        header.writeUInt32LE(length, 0);
        return header;
      });
      const notMsgpack = fc
        .tuple(fc.constantFrom(FrameType.hello, FrameType.message, FrameType.close, 0, 9, 255), fc.uint8Array({ minLength: 1, maxLength: 256 }))
        .map(([type, payload]) => frame(type, Buffer.from(payload)));
      const extensionTypes = fc.constantFrom(
        Buffer.from([0xd4, 0x01, 0x00]),
        Buffer.from([0xc1]),
        Buffer.from([0xc7, 0x01, 0x05, 0x00]),
        Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]),
        Buffer.from([0x81, 0x01, 0x02]),
        Buffer.concat([Buffer.alloc(40, 0x91), Buffer.from([0xc0])]),
        Buffer.from([0xc0, 0xc0]),
      ).map((payload) => frame(FrameType.hello, payload));
      await fc.assert(
        fc.asyncProperty(fc.oneof(randomBytes, badCrc, oversize, notMsgpack, extensionTypes).map((bytes) => Buffer.from(bytes)), nodeIndex, async (bytes, node) => {
          const outcome = await attack(nodeAt(node), bytes);
          expect(outcome.closed, 'the agent hangs up').toBe(true);
          expect(outcome.hello, 'the agent never says hello to garbage').toBe(false);
          expect(outcome.reason ?? '', 'the agent says why').toMatch(/CRC32C|frameBytesMax|too short|frame payload|invalid hello|invalid close frame|unknown frame type|expected a hello/);
        }),
        runs(80),
      );
      await expectClusterUnharmed();
    });

    it('hangs up on a hello that names a member but lacks the cluster peer token, or presents another', async () => {
      const { target, impersonated } = roles();
      const missing = await attack(target, hello(impersonated, { token: undefined }));
      expect(missing.closed && !missing.hello, 'a hello without the token is not answered').toBe(true);
      await fc.assert(
        fc.asyncProperty(fc.string({ minLength: 1, maxLength: 80 }).filter((token) => token !== cluster.cluster.file.peerToken), async (token) => {
          const outcome = await attack(target, hello(impersonated, { token }));
          expect(outcome.closed).toBe(true);
          expect(outcome.hello).toBe(false);
          expect(outcome.reason ?? '').toMatch(/peer token/);
        }),
        runs(20),
      );
      await expectClusterUnharmed();
    });

    it('hangs up on hellos for another cluster, protocol version or unknown node, and on frames before the hello', async () => {
      const clusterId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/);
      const badHello = fc.oneof(
        clusterId.filter((id) => id !== cluster.cluster.file.clusterId).map((id) => ({ overrides: { clusterId: id }, reason: /not this cluster/ })),
        fc.integer({ min: 0, max: 1_000 }).filter((version) => version !== peerProtocolVersion).map((version) => ({ overrides: { protocolVersion: version }, reason: /protocol version/ })),
        fc.constantFrom('n4', 'n9', 'N1', 'intruder').map((from) => ({ overrides: { from }, reason: /not a known peer/ })),
        fc.constantFrom({ from: '' }, { clusterId: 5 }, { protocolVersion: -1 }, { protocolVersion: 1.5 }, { from: 'bad id!' }).map((overrides) => ({ overrides, reason: /invalid hello/ })),
      );
      const beforeHello = fc.oneof(
        fc.constant({ bytes: encodeFrame(FrameType.message, { kind: 'engine' }), reason: /expected a hello/ }),
        fc.constant({ bytes: encodeFrame(FrameType.close, { reason: 'bye' }), reason: /expected a hello/ }),
      );
      await fc.assert(
        fc.asyncProperty(fc.oneof(badHello.map(({ overrides, reason }) => ({ bytes: hello(roles().impersonated, overrides), reason })), beforeHello), nodeIndex, async ({ bytes, reason }, node) => {
          const outcome = await attack(nodeAt(node), bytes);
          expect(outcome.closed).toBe(true);
          expect(outcome.hello).toBe(false);
          expect(outcome.reason ?? '').toMatch(reason);
        }),
        runs(40),
      );
      await expectClusterUnharmed();
    });

    /** Harmless when delivered (term 0 is stale everywhere), so only the mutation can make them wrong. */
    function validEnvelopes(from: string, to: string): Record<string, unknown>[] {
      const base = { from, to, epoch: 0 };
      return [
        { kind: 'engine', message: { type: 'heartbeat', ...base, commit: 0, readContext: 0 } },
        { kind: 'engine', message: { type: 'append', ...base, previousIndex: 0, previousTerm: 0, entries: [{ index: 1, epoch: 0, kind: 'normal', data: new Uint8Array([1, 2]) }], commit: 0 } },
        { kind: 'engine', message: { type: 'vote', ...base, lastIndex: 0, lastTerm: 0, transfer: false } },
        { kind: 'engine', message: { type: 'append-response', ...base, index: 0, reject: true, hintTerm: 0, hintIndex: 0 } },
        { kind: 'engine', message: { type: 'read-index', ...base, requestId: 'r1' } },
        { kind: 'forward-reply', from, to, id: 987_654_321, result: { ok: false, error: { code: 'x', message: 'y' } } },
      ];
    }

    it('hangs up on a greeted connection that sends an invalid, misaddressed or oversize envelope', async () => {
      const peerWrong = fc.oneof(
        fc.constantFrom(-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53 + 2, '5', null, true, [], {}, 'bad id!', '', 'x'.repeat(65)),
        fc.integer({ min: -1_000_000, max: -1 }),
        fc.constant(new Uint8Array([1])),
      );
      const invalid = fc
        .tuple(fc.nat(), fc.nat(), fc.oneof(fc.constant('replace'), fc.constant('delete')), peerWrong)
        .map(([pick, leaf, how, replacement]) => {
          const { target, impersonated } = roles();
          const envelopes = validEnvelopes(impersonated, target);
          const valid = envelopes[pick % envelopes.length] ?? {};
          const paths = leafPaths(valid).filter((path) => !(path[0] === 'result' && path[1] === 'error'));
          const path = paths[leaf % paths.length] ?? ['kind'];
          return { value: mutateAt(structuredClone(valid), path, how === 'delete' ? deleted : replacement), field: String(path.at(-1)), reason: /fails validation/ };
        })
        .filter(({ value }) => !parseEnvelope(roundTripFrame(value)).ok);
      const misaddressed = fc.oneof(
        fc.constant('to-leader'),
        fc.constant('to-unknown'),
        fc.constant('from-leader'),
      ).chain((kind) =>
        fc.nat().map((pick) => {
          const { target, impersonated, leader: current } = roles();
          const from = kind === 'from-leader' ? current : impersonated;
          const to = kind === 'to-leader' ? current : kind === 'to-unknown' ? 'n9' : target;
          const envelopes = validEnvelopes(from, to);
          return { value: envelopes[pick % envelopes.length] as unknown, field: '', reason: kind === 'from-leader' ? /claims to come from/ : /reached/ };
        }),
      );
      const oversizeForward = fc.integer({ min: forwardedCommandBytesMax + 1, max: forwardedCommandBytesMax * 2 }).map((bytes) => {
        const { target, impersonated } = roles();
        return { value: { kind: 'forward', from: impersonated, to: target, id: 1, request: { type: 'kv', command: new Uint8Array(bytes) } } as unknown, field: 'command', reason: /too large/ };
      });
      const nonsense = fc.jsonValue({ maxDepth: 3 }).map((value) => ({ value: value as unknown, field: '', reason: /fails validation/ }));
      await fc.assert(
        fc.asyncProperty(fc.oneof(invalid, misaddressed, oversizeForward, nonsense.filter(({ value }) => !parseEnvelope(value).ok)), async ({ value, field, reason }) => {
          const { target, impersonated } = roles();
          const outcome = await attack(target, Buffer.concat([hello(impersonated), encodeFrame(FrameType.message, value)]));
          expect(outcome.hello, 'our hello was accepted').toBe(true);
          expect(outcome.closed).toBe(true);
          expect(outcome.reason ?? '').toMatch(reason);
          expect(outcome.reason ?? '').toContain(field);
        }),
        runs(60),
      );
      await expectClusterUnharmed();
    });

    it('hangs up on a second hello and on a frame of unknown type after the hello', async () => {
      const { target, impersonated } = roles();
      const second = await attack(target, Buffer.concat([hello(impersonated), hello(impersonated)]));
      expect(second).toMatchObject({ closed: true, hello: true });
      expect(second.reason).toMatch(/unexpected hello frame/);
      const unknownType = await attack(target, Buffer.concat([hello(impersonated), retype(encodeFrame(FrameType.message, { kind: 'engine' }), 9)]));
      expect(unknownType).toMatchObject({ closed: true, hello: true });
      expect(unknownType.reason).toMatch(/unknown frame type 9/);
      await expectClusterUnharmed();
    });
  });

  // ---- afterwards --------------------------------------------------------------

  describe('after all of it', () => {
    it('every agent process is still running', () => {
      for (const [id, child] of cluster.cluster.children) {
        expect(child.exitCode, `${id} exit code`).toBeNull();
        expect(child.signalCode, `${id} signal`).toBeNull();
      }
    });

    it('no token appears in any agent log line', () => {
      const { operatorToken, viewerToken } = cluster.cluster.file;
      const text = [...cluster.logs, ...stderr].join('\n');
      expect(text.length, 'the agents did log the attacks').toBeGreaterThan(0);
      expect(text.includes(operatorToken), 'operator token in the logs').toBe(false);
      expect(text.includes(viewerToken), 'viewer token in the logs').toBe(false);
    });
  });
});

// ---- helpers ------------------------------------------------------------------

function canEncode(text: string): boolean {
  try {
    encodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const chunkBytes = 64 * 1024;
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(offset, offset + chunkBytes));
      offset += chunkBytes;
    },
  });
}

/** Writes raw bytes to an HTTP port and returns whatever comes back before the server hangs up (at most 3 s). */
function rawExchange(base: string, bytes: Buffer): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = connectTcp({ host: url.hostname, port: Number(url.port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), 3_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('connect', () => socket.end(bytes));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

const deleted = Symbol('deleted');

/** Paths to every leaf of a plain value (arrays and bytes are leaves). */
function leafPaths(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) return [prefix];
  return Object.entries(value).flatMap(([key, item]) => leafPaths(item, [...prefix, key]));
}

function mutateAt(root: Record<string, unknown>, path: string[], replacement: unknown): Record<string, unknown> {
  let parent: Record<string, unknown> = root;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
  const last = path.at(-1) ?? '';
  if (replacement === deleted) delete parent[last];
  else parent[last] = replacement;
  return root;
}

/** What the agent receives for a socket.io payload: JSON, with Buffers kept as bytes. */
function roundTripJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, item: unknown) => (Buffer.isBuffer(item) || (item as { type?: unknown })?.type === 'Buffer' ? { bytes: true } : item))) as unknown;
}

/** What the agent decodes from one of our frames. */
function roundTripFrame(value: unknown): unknown {
  const decoded = decodeFrameBody(encodeFrame(FrameType.message, value).subarray(frameHeaderBytes));
  return decoded.ok && decoded.frame.type === 'message' ? decoded.frame.value : undefined;
}
