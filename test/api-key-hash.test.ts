import { describe, expect, it } from 'vitest';
import { hashApiKey } from '../src/auth/keys.js';

describe('hashApiKey', () => {
  it('is the hex SHA-256 of the key: stored key hashes stay valid whatever computes them', () => {
    // printf 'sg_live_example_key_0123456789' | sha256sum
    expect(hashApiKey('sg_live_example_key_0123456789')).toBe('6cb39875100b32a3dd46524bfb2b45e806f81af28b7e65d08d0a83685c982733');
    expect(hashApiKey('sg_live_example_key_0123456789x')).not.toBe('6cb39875100b32a3dd46524bfb2b45e806f81af28b7e65d08d0a83685c982733');
  });
});
