// The i18n catalogue: every string the user sees, in English and Japanese. Error messages are
// looked up by the stable code the backend sends (`error.<code>`), never by its text.
import en from '../i18n/en.json';
import ja from '../i18n/ja.json';

export type Lang = 'en' | 'ja';
export const catalogues: Record<Lang, Record<string, string>> = { en, ja };

let current: Lang = 'en';
const listeners = new Set<(l: Lang) => void>();

export function lang(): Lang {
  return current;
}

export function setLang(l: Lang): void {
  current = l;
  listeners.forEach((f) => f(l));
}

export function onLangChange(f: (l: Lang) => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** Looks up `key` and fills `{name}` placeholders. A missing key shows itself, bracketed. */
export function t(key: string, params: Record<string, unknown> = {}, l: Lang = current): string {
  const s = catalogues[l][key] ?? catalogues.en[key];
  if (s === undefined) return `[${key}]`;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** Keys present in one catalogue and missing in the other. */
export function missingKeys(): { en: string[]; ja: string[] } {
  const e = Object.keys(catalogues.en);
  const j = Object.keys(catalogues.ja);
  return { en: j.filter((k) => !(k in catalogues.en)), ja: e.filter((k) => !(k in catalogues.ja)) };
}

/** A backend error `{code, message, details}` in the current language. */
export function errorText(err: { code: string; message?: string; details?: Record<string, unknown> }): string {
  const key = `error.${err.code}`;
  return key in catalogues[current] ? t(key, err.details ?? {}) : (err.message ?? err.code);
}

/** Local-time rendering of a UTC microsecond timestamp (one formatter per language: making one is slow). */
const formatters = new Map<Lang, Intl.DateTimeFormat>();
export function localTime(micros: number, l: Lang = current): string {
  let f = formatters.get(l);
  if (!f) {
    f = new Intl.DateTimeFormat(l === 'ja' ? 'ja-JP' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short' });
    formatters.set(l, f);
  }
  return f.format(new Date(micros / 1000));
}
