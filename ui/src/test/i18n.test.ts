import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { catalogues, errorText, missingKeys, setLang, t } from '../lib/i18n';

/** Every error code the Rust crates can send: the strings in their `fn code(&self)`. */
function rustErrorCodes(): string[] {
  const root = join(__dirname, '../../../crates');
  const codes = new Set<string>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.rs')) {
        const s = readFileSync(p, 'utf8');
        for (const m of s.matchAll(/fn code\(&self\) -> &'static str \{([\s\S]*?)\n {4}\}/g)) {
          for (const c of m[1].matchAll(/=> "([a-z_]+)"/g)) codes.add(c[1]);
        }
      }
    }
  };
  walk(root);
  return [...codes].sort();
}

/** Every `tr('key'` the screens call, and the prefixes they build keys from (`tr('status.' + …`). */
function uiKeys(): { literal: string[]; prefixes: string[] } {
  const literal = new Set<string>();
  const prefixes = new Set<string>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.svelte') || p.endsWith('.svelte.ts')) {
        const s = readFileSync(p, 'utf8');
        for (const m of s.matchAll(/tr\('([a-z_.]+)'(\s*\+)?/g)) (m[2] ? prefixes : literal).add(m[1]);
      }
    }
  };
  walk(join(__dirname, '..'));
  return { literal: [...literal].sort(), prefixes: [...prefixes].sort() };
}

/** The `=> "name"` strings of one Rust fn, e.g. every event kind. */
function rustNames(file: string, fnHead: string): string[] {
  const s = readFileSync(join(__dirname, '../../../crates', file), 'utf8');
  const start = s.indexOf(fnHead);
  const body = s.slice(start, s.indexOf('\n    }', start));
  return [...body.matchAll(/=> "([A-Za-z_0-9-]+)"/g)].map((m) => m[1]);
}

describe('catalogue', () => {
  it('has every key the screens use, in both languages', () => {
    const { literal, prefixes } = uiKeys();
    expect(literal.length).toBeGreaterThan(100);
    for (const l of ['en', 'ja'] as const) expect(literal.filter((k) => !(k in catalogues[l])), l).toEqual([]);
    // Keys built at run time: every value the backend can send has its key.
    const built: Record<string, string[]> = {
      'event.': rustNames('kura-domain/src/event.rs', 'pub fn kind(&self)'),
      'kind.': rustNames('kura-domain/src/container.rs', 'pub fn as_str(self)'),
      'status.': [...rustNames('kura-domain/src/specimen.rs', 'impl Status {'), 'blocked'],
      'temp.': ['room', 'fridge', 'minus20', 'minus80', 'ln_vapour', 'ln_liquid'],
      'purpose.': ['analysis', 'qc', 'distribution', 'transfer', 'other'],
      'settings.kind.': ['tcp', 'cups', 'cups_pdf'],
      // PrinterTest.status (kura-app labels.rs), spaces as underscores.
      'settings.status.': ['ready', 'no_status_answer', 'queue_running'],
      'role.': rustNames('kura-domain/src/user.rs', 'pub fn as_str(self)'),
      'meaning.': ['performed', 'reviewed', 'approved'],
      'grid.legend.': ['empty', 'available', 'checked_out', 'blocked', 'holds'],
      'screen.': ['checkin', 'checkout', 'return', 'move', 'find', 'detail', 'register', 'storage', 'print', 'settings', 'sync', 'people', 'ship', 'receive', 'bulk'],
      'sync.': ['in_effect', 'refused'],
      // The reconciliation's lists (kura-app rack.rs).
      'bulk.kind.': ['matched', 'missing', 'moved', 'unreadable', 'unexpected'],
      'sync.state.': ['not_enrolled', 'online', 'offline', 'error', 'stopped', 'syncing'],
      'field.': ['to', 'purpose', 'due', 'reason', 'thawed'],
      // Coolant::as_str (kura-domain shipment.rs) and the reception conditions (kura-app).
      'coolant.': rustNames('kura-domain/src/shipment.rs', 'pub fn as_str(self)'),
      'condition.': ['ok', 'thawed', 'damaged', 'leaked'],
    };
    expect(prefixes.filter((p) => !(p in built))).toEqual([]);
    for (const [p, names] of Object.entries(built)) {
      expect(names.length, p).toBeGreaterThan(1);
      for (const l of ['en', 'ja'] as const) expect(names.filter((n) => !(p + n in catalogues[l])), `${l} ${p}`).toEqual([]);
    }
  });

  it('has every key in both languages', () => expect(missingKeys()).toEqual({ en: [], ja: [] }));
  it('translates every error code the backend sends', () => {
    const codes = rustErrorCodes();
    expect(codes.length).toBeGreaterThan(40);
    for (const l of ['en', 'ja'] as const) {
      expect(codes.filter((c) => !(`error.${c}` in catalogues[l])), l).toEqual([]);
    }
  });
  it('uses the same placeholders in both languages', () => {
    const ph = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const k of Object.keys(catalogues.en)) expect(ph(catalogues.ja[k]), k).toEqual(ph(catalogues.en[k]));
  });
  it('switches at run time and fills placeholders', () => {
    setLang('ja');
    expect(errorText({ code: 'position_occupied', details: { container: 'BX1', pos: 'A1', by: 'X' } })).toBe(
      'BX1 の位置 A1 には X があります。空いている位置を選んでください。',
    );
    setLang('en');
    expect(t('action.check_in')).toBe('Check in');
    expect(errorText({ code: 'no_such_code', message: 'raw message' })).toBe('raw message');
    expect(t('nope')).toBe('[nope]');
  });
});
