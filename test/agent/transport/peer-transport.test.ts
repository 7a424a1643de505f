import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, encodeFrame, encodeHello, peerProtocolVersion } from '../../../src/agent/transport/frame';
import { Endpoints, closeReasonFor, freePort, ping, rawExchange, waitFor, type Endpoint } from './helpers';

const endpoints = new Endpoints();
afterEach(() => endpoints.closeAll());

const hello = (from: string, clusterId = 'test-cluster') => encodeHello({ clusterId, from, protocolVersion: peerProtocolVersion });

function withValidCrc(body: Uint8Array): Buffer {
  const frame = Buffer.alloc(8 + body.length);
  frame.writeUInt32LE(body.length, 0);
  frame.writeUInt32LE(crc32c(body) >>> 0, 4);
  frame.set(body, 8);
  return frame;
}

/** Sends a ping from `from` to `to` and waits until `to` has it; proves the path still works. */
async function roundTrip(from: Endpoint, to: Endpoint, seq: number): Promise<void> {
  from.transport.send(to.id, ping(from.id, to.id, seq));
  await waitFor(() => to.received.some((message) => message.from === from.id && message.seq === seq), 5_000, `${from.id} -> ${to.id} #${seq}`);
}

describe('PeerTransport', () => {
  it('two endpoints exchange messages both ways, bytes intact and in order', async () => {
    const [a, b] = await endpoints.mesh(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('mesh');
    for (let seq = 0; seq < 50; seq += 1) a.transport.send('b', ping('a', 'b', seq, new Uint8Array([seq, 255 - seq])));
    b.transport.send('a', ping('b', 'a', 7));
    await waitFor(() => b.received.length === 50 && a.received.length === 1);
    expect(b.received.map((message) => message.seq)).toEqual(Array.from({ length: 50 }, (_, seq) => seq));
    expect([...(b.received[3]?.data ?? [])]).toEqual([3, 252]);
    expect(a.received[0]).toEqual(ping('b', 'a', 7));
    expect(a.transport.stats().framesSent).toBe(50);
    expect(b.transport.stats().framesReceived).toBe(50);
    expect(a.transport.stats().peers.b?.connected).toBe(true);
  });

  it('three endpoints each reach the other two', async () => {
    const mesh = await endpoints.mesh(['a', 'b', 'c']);
    for (const from of mesh) for (const to of mesh) if (from !== to) from.transport.send(to.id, ping(from.id, to.id, 1));
    await waitFor(() => mesh.every((endpoint) => endpoint.received.length === 2));
    for (const endpoint of mesh) expect(endpoint.received.map((message) => message.from).sort()).toEqual(mesh.map((other) => other.id).filter((id) => id !== endpoint.id).sort());
  });

  it('reconnects with backoff after the peer restarts on the same port', async () => {
    const a = await endpoints.start('a');
    const bPort = await freePort();
    let b = await endpoints.start('b', { port: bPort, peers: [{ id: 'a', host: '127.0.0.1', port: a.transport.address().port }] });
    a.transport.addPeer({ id: 'b', host: '127.0.0.1', port: bPort });
    await roundTrip(a, b, 1);
    await b.transport.close();

    // While b is down, a keeps sending (as an engine would) and keeps redialling with backoff.
    await waitFor(() => {
      a.transport.send('b', ping('a', 'b', 2));
      return a.transport.stats().reconnects >= 2;
    }, 5_000, 'redials while b is down');
    b = await endpoints.start('b', { port: bPort, peers: [{ id: 'a', host: '127.0.0.1', port: a.transport.address().port }] });
    const restarted = b;
    await waitFor(() => {
      a.transport.send('b', ping('a', 'b', 3));
      return restarted.received.some((message) => message.seq === 3);
    }, 5_000, 'delivery after restart');
    expect(a.transport.stats().reconnects).toBeGreaterThanOrEqual(1);
  });

  describe('a bad frame closes only its own connection, with a reason, and the server keeps serving', () => {
    const cases: { name: string; bytes: () => Buffer; reason: RegExp }[] = [
      { name: 'random bytes', bytes: () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), reason: /frame length \d+ exceeds frameBytesMax|CRC32C|middle of a frame/ },
      {
        name: 'a bad CRC',
        bytes: () => {
          const frame = encodeFrame(FrameType.message, ping('a', 'b', 1));
          frame.writeUInt32LE(frame.readUInt32LE(4) ^ 1, 4);
          return Buffer.concat([hello('a'), frame]);
        },
        reason: /frame CRC32C mismatch/,
      },
      {
        name: 'an oversize length',
        bytes: () => {
          const header = Buffer.alloc(8);
          header.writeUInt32LE(1024 * 1024 + 1, 0);
          return Buffer.concat([hello('a'), header]);
        },
        reason: /frame length 1048577 exceeds frameBytesMax 1048576/,
      },
      {
        name: 'a valid CRC around a message the validator refuses',
        bytes: () => Buffer.concat([hello('a'), encodeFrame(FrameType.message, { type: 'ping', from: 'a', to: 'b', seq: -1 })]),
        reason: /message fails validation: invalid ping: ping\.seq/,
      },
      {
        name: 'a valid CRC around a msgpack extension',
        bytes: () => Buffer.concat([hello('a'), withValidCrc(Buffer.from([FrameType.message, 0xd4, 0x73, 0x00]))]),
        reason: /msgpack token 0xd4 at byte 0 is not allowed/,
      },
      {
        name: 'a message that claims another sender',
        bytes: () => Buffer.concat([hello('a'), encodeFrame(FrameType.message, ping('c', 'b', 1))]),
        reason: /claims to come from c on a's connection/,
      },
    ];
    for (const testCase of cases) {
      it(testCase.name, async () => {
        const [a, b] = await endpoints.mesh(['a', 'b', 'c'], { frameBytesMax: 1024 * 1024 });
        if (a === undefined || b === undefined) throw new Error('mesh');
        await roundTrip(a, b, 1);
        const { localPort, closeReason } = await rawExchange(b.transport.address().port, testCase.bytes());
        expect(closeReasonFor(b.lines, localPort)).toMatch(testCase.reason);
        expect(closeReason).toMatch(testCase.reason);
        expect(b.transport.stats().badFrames).toBe(1);
        // The established connection from a was not touched, and new ones are still accepted.
        await roundTrip(a, b, 2);
      });
    }
  });

  it('refuses a hello from another cluster or an unknown node', async () => {
    const [, b] = await endpoints.mesh(['a', 'b']);
    if (b === undefined) throw new Error('mesh');
    const otherCluster = await rawExchange(b.transport.address().port, hello('a', 'other-cluster'));
    expect(otherCluster.closeReason).toMatch(/cluster other-cluster is not this cluster \(test-cluster\)/);
    const stranger = await rawExchange(b.transport.address().port, hello('mallory'));
    expect(stranger.closeReason).toMatch(/node mallory is not a known peer/);
    expect(b.transport.stats().handshakesRejected).toBe(2);
  });

  it('with a peer token, members exchange messages and a hello without the token, or with another, is refused', async () => {
    const token = 'peer-secret-0123456789';
    const a = await endpoints.start('a', { peerToken: token });
    const b = await endpoints.start('b', { peerToken: token, peers: [{ id: 'a', host: '127.0.0.1', port: a.transport.address().port }] });
    a.transport.addPeer({ id: 'b', host: '127.0.0.1', port: b.transport.address().port });
    await roundTrip(a, b, 1);
    await roundTrip(b, a, 2);
    const missing = await rawExchange(b.transport.address().port, hello('a'));
    expect(missing.closeReason).toMatch(/did not present this cluster's peer token/);
    const wrong = await rawExchange(b.transport.address().port, encodeHello({ clusterId: 'test-cluster', from: 'a', protocolVersion: peerProtocolVersion, token: 'peer-secret-9876543210' }));
    expect(wrong.closeReason).toMatch(/did not present this cluster's peer token/);
  });

  it('a dialler whose peer answers without the peer token hangs up and does not deliver', async () => {
    const a = await endpoints.start('a', { peerToken: 'peer-secret-0123456789' });
    const b = await endpoints.start('b', { peers: [{ id: 'a', host: '127.0.0.1', port: a.transport.address().port }] });
    a.transport.addPeer({ id: 'b', host: '127.0.0.1', port: b.transport.address().port });
    a.transport.send('b', ping('a', 'b', 1));
    // b, configured without the token, refuses nothing; a must refuse b's answer and deliver nothing.
    await waitFor(() => a.lines.some((line) => /did not present this cluster's peer token/.test(String(line.fields.reason ?? line.message))));
    expect(b.received).toEqual([]);
  });

  it('a dialler that reaches a node of another cluster hangs up and does not deliver', async () => {
    const a = await endpoints.start('a');
    const b = await endpoints.start('b', { clusterId: 'elsewhere', peers: [{ id: 'a', host: '127.0.0.1', port: a.transport.address().port }] });
    a.transport.addPeer({ id: 'b', host: '127.0.0.1', port: b.transport.address().port });
    a.transport.send('b', ping('a', 'b', 1));
    await waitFor(() => b.lines.some((line) => /cluster test-cluster is not this cluster/.test(String(line.fields.reason))));
    expect(b.received).toEqual([]);
  });

  it('bounds the send queue by dropping the oldest messages, and counts the drops', async () => {
    const port = await freePort();
    const a = await endpoints.start('a', { limits: { sendQueueMessagesMax: 10 } });
    a.transport.addPeer({ id: 'b', host: '127.0.0.1', port });
    // Nobody listens yet: everything waits in the queue.
    for (let seq = 0; seq < 50; seq += 1) a.transport.send('b', ping('a', 'b', seq));
    expect(a.transport.stats().peers.b).toMatchObject({ queueMessages: 10, framesDropped: 40 });
    expect(a.transport.stats().framesDroppedQueueFull).toBe(40);
    const b = await endpoints.start('b', { port, peers: [{ id: 'a', host: '127.0.0.1', port: a.transport.address().port }] });
    await waitFor(() => b.received.length === 10, 5_000, 'queued messages');
    expect(b.received.map((message) => message.seq)).toEqual([40, 41, 42, 43, 44, 45, 46, 47, 48, 49]);
  });

  it('bounds the send queue by bytes too', async () => {
    const port = await freePort();
    const a = await endpoints.start('a', { limits: { sendQueueBytesMax: 5_000 } });
    a.transport.addPeer({ id: 'b', host: '127.0.0.1', port });
    for (let seq = 0; seq < 10; seq += 1) a.transport.send('b', ping('a', 'b', seq, new Uint8Array(1_000)));
    const peer = a.transport.stats().peers.b;
    expect(peer?.queueBytes).toBeLessThanOrEqual(5_000);
    expect(peer?.queueMessages).toBe(4);
  });

  it('isolate drops traffic in both directions until heal', async () => {
    const [a, b] = await endpoints.mesh(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('mesh');
    await roundTrip(a, b, 1);
    await roundTrip(b, a, 1);
    a.transport.isolate(['b']);
    a.transport.send('b', ping('a', 'b', 2));
    b.transport.send('a', ping('b', 'a', 2));
    await waitFor(() => a.transport.stats().framesDroppedIsolated === 2, 2_000, 'both directions dropped');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(b.received.map((message) => message.seq)).toEqual([1]);
    expect(a.received.map((message) => message.seq)).toEqual([1]);
    a.transport.heal();
    await roundTrip(a, b, 3);
    await roundTrip(b, a, 3);
  });

  it('isolate(null) cuts every peer', async () => {
    const [a, b, c] = await endpoints.mesh(['a', 'b', 'c']);
    if (a === undefined || b === undefined || c === undefined) throw new Error('mesh');
    a.transport.isolate(null);
    a.transport.send('b', ping('a', 'b', 1));
    a.transport.send('c', ping('a', 'c', 1));
    expect(a.transport.stats().framesDroppedIsolated).toBe(2);
    await roundTrip(b, c, 1);
  });

  it('setDelayMs adds latency to outgoing messages', async () => {
    const [a, b] = await endpoints.mesh(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('mesh');
    await roundTrip(a, b, 1);
    a.transport.setDelayMs(150);
    const startMs = performance.now();
    await roundTrip(a, b, 2);
    expect(performance.now() - startMs).toBeGreaterThanOrEqual(145);
    a.transport.setDelayMs(0);
    const fastStartMs = performance.now();
    await roundTrip(a, b, 3);
    expect(performance.now() - fastStartMs).toBeLessThan(145);
  });

  it('close stops the server and every socket', async () => {
    const [a, b] = await endpoints.mesh(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('mesh');
    await roundTrip(a, b, 1);
    const port = b.transport.address().port;
    await b.transport.close();
    await expect(rawExchange(port, Buffer.alloc(1), 1_000)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('property: random and mutated frames never crash the listener; each connection closes with a reason', async () => {
    const [a, b] = await endpoints.mesh(['a', 'b'], { frameBytesMax: 64 * 1024 });
    if (a === undefined || b === undefined) throw new Error('mesh');
    const valid = Buffer.concat([hello('a'), encodeFrame(FrameType.message, ping('a', 'b', 9, new Uint8Array([1, 2, 3])))]);
    const input = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((payload) => Buffer.concat([hello('a'), withValidCrc(Buffer.concat([Buffer.from([FrameType.message]), payload]))])),
      fc
        .array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 })
        .map((flips) => {
          const mutated = Buffer.from(valid);
          // Leave the hello alone half the time, so mutations also reach the message frame.
          for (const [offset, xor] of flips) mutated[offset] = (mutated[offset] ?? 0) ^ xor;
          return mutated;
        }),
    );
    await fc.assert(
      fc.asyncProperty(input, async (bytes) => {
        const { localPort } = await rawExchange(b.transport.address().port, bytes);
        await waitFor(() => closeReasonFor(b.lines, localPort) !== null, 2_000, 'a logged reason');
        expect(closeReasonFor(b.lines, localPort)).not.toBe('');
      }),
      { numRuns: 150, seed: Number(process.env.QUORUMSCOPE_FUZZ_SEED ?? 20260127) },
    );
    await roundTrip(a, b, 1);
  });
});
