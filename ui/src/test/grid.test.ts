import { describe, expect, it } from 'vitest';
import { rowWindow, slotState } from '../lib/grid';

describe('box grid colours', () => {
  const check = (slot: Parameters<typeof slotState>[0], want: string) => expect(slotState(slot), JSON.stringify(slot)).toBe(want);
  it('says what holds a position and in what state', () => {
    check({ specimen: null, container: null, blocked: false, status: null }, 'empty');
    check({ specimen: 'A', container: null, blocked: false, status: 'available' }, 'available');
    check({ specimen: 'A', container: null, blocked: false, status: 'checked_out' }, 'checked_out');
    check({ specimen: 'A', container: null, blocked: true, status: 'available' }, 'blocked');
    check({ specimen: null, container: 'BX1', blocked: false, status: null }, 'holds');
  });
});

describe('virtualised list window', () => {
  const check = (args: [number, number, number, number], want: [number, number]) => expect(rowWindow(...args), JSON.stringify(args)).toEqual(want);
  it('renders the rows in view and a few either side, never outside the list', () => {
    // scrollTop, height, rowHeight, count
    check([0, 320, 32, 10_000], [0, 16]);
    check([3200, 320, 32, 10_000], [94, 116]);
    check([319_680, 320, 32, 10_000], [9984, 10_000]);
    check([0, 320, 32, 3], [0, 3]);
    check([0, 320, 32, 0], [0, 0]);
    check([5000, 320, 32, 3], [3, 3]); // scrolled past a list that shrank
  });
});
