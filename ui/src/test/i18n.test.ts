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

describe('catalogue', () => {
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
