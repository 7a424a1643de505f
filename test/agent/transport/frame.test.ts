import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameReader, FrameType, checkMsgpack, decodeFrameBody, encodeFrame, frameNestingMax } from '../../../src/agent/transport/frame';

const value = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true }),
    fc.string(),
    fc.uint8Array({ maxLength: 300 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string(), tie('value'), { maxKeys: 5 }),
  ),
})).value;

/** Bytes compare by content (the decoder hands back Buffers); msgpack has no -0, so it reads back as 0; everything else as is. */
function normalise(input: unknown): unknown {
  if (input instanceof Uint8Array) return { bytes: [...input] };
  if (Object.is(input, -0)) return 0;
  if (Array.isArray(input)) return input.map(normalise);
  if (typeof input === 'object' && input !== null) return Object.fromEntries(Object.entries(input).map(([key, item]) => [key, normalise(item)]));
  return input;
}

describe('peer frames', () => {
  it('everything our encoder writes passes the structure check and decodes to an equal value', () => {
    fc.assert(
      fc.property(value, (input) => {
        const frame = encodeFrame(FrameType.message, input);
        const body = frame.subarray(8);
        expect(checkMsgpack(body.subarray(1), frameNestingMax)).toBeNull();
        const decoded = decodeFrameBody(body);
        expect(decoded.ok).toBe(true);
        if (decoded.ok && decoded.frame.type === 'message') expect(normalise(decoded.frame.value)).toEqual(normalise(input));
      }),
      // A fixed seed: a failure replays; QUORUMSCOPE_FUZZ_SEED explores others.
      { numRuns: 300, seed: Number(process.env.QUORUMSCOPE_FUZZ_SEED ?? 20260127) },
    );
  });

  it('refuses nesting deeper than frameNestingMax without building it', () => {
    const deep = Buffer.concat([Buffer.alloc(frameNestingMax + 1, 0x91), Buffer.from([0x01])]);
    expect(checkMsgpack(deep, frameNestingMax)).toMatch(/nesting deeper than 32/);
  });

  it('refuses an array that claims more items than bytes left', () => {
    expect(checkMsgpack(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]), frameNestingMax)).toMatch(/claims 4294967295 items/);
  });

  it('refuses non-string map keys and trailing bytes', () => {
    expect(checkMsgpack(Buffer.from([0x81, 0x01, 0x02]), frameNestingMax)).toMatch(/map key .* is not a string/);
    expect(checkMsgpack(Buffer.from([0x01, 0x02]), frameNestingMax)).toMatch(/1 trailing bytes/);
  });

  it('reassembles frames split at every byte boundary', () => {
    const frames = Buffer.concat([encodeFrame(FrameType.message, { a: 1 }), encodeFrame(FrameType.message, { b: 'two' })]);
    for (let split = 1; split < frames.length; split += 1) {
      const reader = new FrameReader(1024);
      const first = reader.push(frames.subarray(0, split));
      const second = reader.push(frames.subarray(split));
      if (!first.ok || !second.ok) throw new Error('reader refused a valid stream');
      expect(first.bodies.length + second.bodies.length).toBe(2);
      expect(reader.bufferedBytes()).toBe(0);
    }
  });
});
