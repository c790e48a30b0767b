import { describe, expect, it } from 'vitest';
import { diffMembers, isEmptyDiff, memberAddress, normalizeMembers } from './member.js';

const node = (n: number, address?: string) => ({
  host: `node-${n}.mycluster.example`,
  port: 11211,
  ...(address === undefined ? {} : { address }),
});

describe('members identified by host, reached at an address', () => {
  it('keeps the address apart from the identity, and drops one equal to the host', () => {
    expect(
      normalizeMembers([node(2, '10.0.0.2'), { host: '10.0.0.1', port: 1, address: '10.0.0.1' }]),
    ).toEqual([{ host: '10.0.0.1', port: 1 }, node(2, '10.0.0.2')]);
    expect(memberAddress(node(2, '10.0.0.2'))).toBe('10.0.0.2');
    expect(memberAddress(node(3))).toBe(node(3).host);
  });

  it('tells an address change as changed, not as a member removed and added', () => {
    const diff = diffMembers(
      [node(1, '10.0.0.1'), node(2, '10.0.0.2')],
      [node(1, '10.0.0.1'), node(2, '10.0.9.9')],
    );
    expect(diff).toEqual({ added: [], removed: [], changed: [node(2, '10.0.9.9')] });
    expect(isEmptyDiff(diff)).toBe(false);
  });

  it('leaves `changed` out when no address changed, so DNS diffs read as before', () => {
    const diff = diffMembers([node(1, '10.0.0.1')], [node(1, '10.0.0.1'), node(2)]);
    expect(diff).toEqual({ added: [node(2)], removed: [] });
    expect(isEmptyDiff(diffMembers([node(1, '10.0.0.1')], [node(1, '10.0.0.1')]))).toBe(true);
  });
});
