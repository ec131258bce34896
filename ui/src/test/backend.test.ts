import { describe, expect, it } from 'vitest';
import { backend, type Transport } from '../lib/backend';

function fake(reply: (cmd: string, args?: Record<string, unknown>) => unknown): Transport & { calls: unknown[] } {
  const calls: unknown[] = [];
  return {
    calls,
    call: async <T>(cmd: string, args?: Record<string, unknown>) => {
      calls.push([cmd, args]);
      const r = reply(cmd, args);
      if (r instanceof Error) throw r;
      if (r && typeof r === 'object' && 'reject' in r) throw (r as { reject: unknown }).reject;
      return r as T;
    },
  };
}

describe('backend', () => {
  it('sends the command names and argument names the Rust commands take', async () => {
    const t = fake(() => ({ specimen: 'X', container: 'BX1', row: 0, col: 0, position: 'A1' }));
    await backend(t).checkIn('X', 'BX1');
    await backend(t).show('X');
    expect(t.calls).toEqual([
      ['check_in', { specimen: 'X', container: 'BX1', position: null }],
      ['show', { scan: 'X' }],
    ]);
  });
  it('passes {code, message, details} errors through', async () => {
    const t = fake(() => ({ reject: { code: 'position_occupied', message: 'm', details: { pos: 'A1' } } }));
    await expect(backend(t).show('X')).rejects.toEqual({ code: 'position_occupied', message: 'm', details: { pos: 'A1' } });
  });
  it('wraps anything else as an IPC error', async () => {
    const t = fake(() => ({ reject: 'boom' }));
    await expect(backend(t).show('X')).rejects.toEqual({ code: 'ipc_error', message: 'boom' });
  });
});
