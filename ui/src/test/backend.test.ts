import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backend, type Transport } from '../lib/backend';

function fake(reply: (cmd: string, args?: Record<string, unknown>) => unknown): Transport & { calls: [string, Record<string, unknown> | undefined][] } {
  const calls: [string, Record<string, unknown> | undefined][] = [];
  return {
    calls,
    call: async <T>(cmd: string, args?: Record<string, unknown>) => {
      calls.push([cmd, args]);
      const r = reply(cmd, args);
      if (r && typeof r === 'object' && 'reject' in r) throw (r as { reject: unknown }).reject;
      return r as T;
    },
  };
}

/** The Tauri commands in src-tauri/src/main.rs and the names of their arguments. */
function rustCommands(): Map<string, string[]> {
  const src = readFileSync(join(__dirname, '../../../src-tauri/src/main.rs'), 'utf8');
  const out = new Map<string, string[]>();
  for (const m of src.matchAll(/#\[tauri::command\]\s*async fn (\w+)\(([^)]*)\)/g)) {
    const args = m[2]
      .split(',')
      .map((a) => a.trim().split(':')[0].trim())
      .filter((a) => a && a !== 'app' && a !== 'sync');
    out.set(m[1], args);
  }
  const handler = /generate_handler!\[([\s\S]*?)\]/.exec(src)![1].split(',').map((s) => s.trim()).filter(Boolean);
  expect([...out.keys()].sort()).toEqual([...handler].sort());
  return out;
}

// Tauri maps a JS argument `fooBar` to the Rust argument `foo_bar`.
const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

describe('backend', () => {
  it('calls every Rust command with exactly the arguments it takes', async () => {
    const rust = rustCommands();
    const t = fake(() => ({}));
    const api = backend(t) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    // Every method, with placeholder arguments of the right arity.
    for (const [name, f] of Object.entries(api)) await f(...Array.from({ length: f.length }, () => (name === 'checkOut' ? [] : 'X')));
    const called = new Map(t.calls.map(([c, a]) => [c, Object.keys(a ?? {}).sort()]));
    expect([...called.keys()].sort()).toEqual([...rust.keys()].sort());
    for (const [cmd, args] of rust) expect(called.get(cmd), cmd).toEqual(args.map(camel).sort());
  });
  it('sends the values where the Rust side reads them', async () => {
    const t = fake(() => 1);
    const api = backend(t);
    await api.checkIn('X', 'BX1');
    await api.checkOut(['A', 'B'], { to: 'Dr. Sato', purpose: 'qc', due: null, note: null });
    await api.find({ text: 'P-1', donor: null, study: null, sample_type: null, status: null, limit: 10, offset: 0 });
    expect(t.calls).toEqual([
      ['check_in', { specimen: 'X', container: 'BX1', position: null }],
      ['check_out', { specimens: ['A', 'B'], out: { to: 'Dr. Sato', purpose: 'qc', due: null, note: null } }],
      ['find', { query: { text: 'P-1', donor: null, study: null, sample_type: null, status: null, limit: 10, offset: 0 } }],
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
