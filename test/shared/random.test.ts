import { describe, expect, it } from 'vitest';
import { createRandom } from '../../src/shared/random';

describe('seeded random', () => {
  it('replays the same sequence from the same seed', () => {
    const a = createRandom(42);
    const b = createRandom(42);
    expect(Array.from({ length: 100 }, () => a.next())).toEqual(Array.from({ length: 100 }, () => b.next()));
  });

  it('gives different sequences for different seeds', () => {
    expect(createRandom(1).next()).not.toEqual(createRandom(2).next());
  });

  it('keeps int() within its inclusive bounds and reaches both ends', () => {
    const random = createRandom(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2_000; i += 1) {
      const value = random.int(3, 6);
      expect(value).toBeGreaterThanOrEqual(3);
      expect(value).toBeLessThanOrEqual(6);
      seen.add(value);
    }
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
  });

  it('refuses an empty range', () => {
    expect(() => createRandom(1).int(5, 4)).toThrow(RangeError);
  });
});
