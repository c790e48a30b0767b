import { describe, expect, it } from 'vitest';
import { withDeadline } from './deadline.js';

describe('withDeadline', () => {
  it('settles with the work when it is in time', async () => {
    await expect(withDeadline(Promise.resolve(1), 1000, () => 'late')).resolves.toBe(1);
    await expect(withDeadline(Promise.reject(new Error('no')), 1000, () => 'late')).rejects.toThrow(
      'no',
    );
  });

  it('settles with late() at the deadline, and ignores a later rejection', async () => {
    let fail!: (error: Error) => void;
    const slow = new Promise<number>((_, reject) => (fail = reject));
    await expect(withDeadline(slow, 20, () => 'late')).resolves.toBe('late');
    fail(new Error('after the deadline'));
  });
});
