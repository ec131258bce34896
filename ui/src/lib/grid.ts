// Pure helpers of the box grid and the virtualised list (tested as tables in src/test/grid.test.ts).
import type { BoxSlot } from './types.gen';

/** How a position is coloured: what holds it, and in what state. */
export function slotState(s: Pick<BoxSlot, 'specimen' | 'container' | 'blocked' | 'status'>): string {
  if (s.container) return 'holds';
  if (!s.specimen) return 'empty';
  if (s.blocked) return 'blocked';
  return s.status ?? 'empty';
}

/** The rows a virtualised list renders: [first, last) around the viewport, with `overscan` each side. */
export function rowWindow(scrollTop: number, height: number, rowHeight: number, count: number, overscan = 6): [number, number] {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(count, Math.ceil((scrollTop + height) / rowHeight) + overscan);
  return [Math.min(first, last), last];
}
