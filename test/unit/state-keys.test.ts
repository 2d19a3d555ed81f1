import { describe, expect, it } from 'vitest';
import { escapeKey, KeyFormatError, unescapeKey } from '../../shared/state/keys';

// What Table Storage refuses in PartitionKey/RowKey, plus lone surrogates (not encodable as UTF-8).
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f/\\#?]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('escapeKey', () => {
  it.each([
    ['plain GUID', '6f1c2b7e-3d4a-4c4e-9a51-0b2f7f6c1d2e', '6f1c2b7e-3d4a-4c4e-9a51-0b2f7f6c1d2e'],
    ['empty', '', ''],
    ['slash', 'a/b', 'a%2Fb'],
    ['backslash', 'a\\b', 'a%5Cb'],
    ['hash', 'a#b', 'a%23b'],
    ['question mark', 'a?b', 'a%3Fb'],
    ['percent, the escape character', '100%', '100%25'],
    ['an escape look-alike stays apart from its decoding', '%2F', '%252F'],
    ['NUL and unit separator', '\u0000\u001f', '%00%1F'],
    ['DEL and C1 controls', '\u007f\u0085\u009f', '%7F%85%9F'],
    ['first printable after C1 passes', '\u00a0é', '\u00a0é'],
    ['unicode passes', 'Zoë 山田 🚀', 'Zoë 山田 🚀'],
    ['quote and space pass', "o'brien x", "o'brien x"],
    ['lone high surrogate', 'a\ud83d', 'a%uD83D'],
    ['lone low surrogate', '\ude80b', '%uDE80b'],
    ['reversed pair is two lone halves', '\ude80\ud83d', '%uDE80%uD83D'],
  ])('%s', (_name, input, expected) => {
    expect(escapeKey(input)).toBe(expected);
    expect(unescapeKey(expected)).toBe(input);
  });

  it('keeps distinct ids apart where a naive escape would merge them', () => {
    const ids = ['a/b', 'a%2Fb', 'a%252Fb', 'a\ud83d', 'a%uD83D', 'a\ufffd'];
    expect(new Set(ids.map(escapeKey)).size).toBe(ids.length);
  });
});

describe('unescapeKey', () => {
  it.each([
    ['stray percent', '100%'],
    ['short escape', 'a%2'],
    ['lower-case hex', 'a%2fb'],
    ['escape of a character that needs none', '%41'],
    ['escaped surrogate pair that should have passed through', '%uD83D%uDE80'],
    ['raw forbidden character', 'a/b'],
    ['raw control character', 'a\u0001'],
    ['long escape of a short character', '%u0025'],
  ])('rejects %s', (_name, key) => {
    expect(() => unescapeKey(key)).toThrow(KeyFormatError);
  });
});

describe('escapeKey over random strings', () => {
  // Seeded so a failure reproduces; weighted towards the characters that matter.
  function random(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
  }
  const interesting = ['/', '\\', '#', '?', '%', '%2F', '%u', '\u0000', '\u007f', '\u009f', '\ud83d', '\ude80', '🚀', 'é', "'", 'A', '9', '-'];

  it('round-trips and never emits a forbidden character or lone surrogate (5000 strings)', () => {
    const next = random(20261128);
    for (let i = 0; i < 5000; i++) {
      let s = '';
      const length = Math.floor(next() * 24);
      for (let j = 0; j < length; j++) {
        s += next() < 0.5 ? interesting[Math.floor(next() * interesting.length)] : String.fromCharCode(Math.floor(next() * 0x10000));
      }
      const key = escapeKey(s);
      expect(unescapeKey(key), JSON.stringify(s)).toBe(s);
      expect(FORBIDDEN.test(key), JSON.stringify(key)).toBe(false);
      expect(LONE_SURROGATE.test(key), JSON.stringify(key)).toBe(false);
    }
  });

  it('is injective on random strings (no two inputs share a key)', () => {
    const next = random(7);
    const seen = new Map<string, string>();
    for (let i = 0; i < 5000; i++) {
      let s = '';
      for (let j = 0; j < 4; j++) s += interesting[Math.floor(next() * interesting.length)];
      const key = escapeKey(s);
      const before = seen.get(key);
      if (before !== undefined) expect(before).toBe(s);
      seen.set(key, s);
    }
    expect(seen.size).toBeGreaterThan(1000);
  });
});
