// Reading what a keyboard-wedge scanner types: normalisation (NFKC, Caps Lock), the IME
// check, the MOD 37-2 check character, classification of the scan, and telling a scanner
// from a person typing by the timing between keys.

export type ScanError =
  | { code: 'scan_empty' }
  | { code: 'scan_control_character'; scanned: string }
  | { code: 'scan_ime_on'; scanned: string }
  | { code: 'scan_invalid_character'; scanned: string; character: string }
  | { code: 'scan_wrong_check_character'; scanned: string; expected: string };

export type Scan =
  | { kind: 'specimen'; code: string; kura: boolean }
  | { kind: 'container'; code: string }
  | { kind: 'position'; container: string; position: string }
  | { kind: 'badge'; user: string }
  | { kind: 'command'; command: 'done' | 'cancel' | 'undo' };

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*';
const KANA = /[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]/;

/** The ISO/IEC 7064 MOD 37-2 check character of `data` (0-9A-Z). */
export function checkChar(data: string): string {
  let p = 0;
  for (const c of data) p = (2 * p + ALPHABET.indexOf(c)) % 37;
  return ALPHABET[(1 + 74 - 2 * p) % 37];
}

export function isKuraId(s: string): boolean {
  if (s.length < 4 || !/^[0-9A-Z]+[0-9A-Z*]$/.test(s)) return false;
  let p = 0;
  for (const c of s) p = (2 * p + ALPHABET.indexOf(c)) % 37;
  return p === 1;
}

/** Trims, applies NFKC (full-width → half-width) and upper-cases; refuses kana and control characters. */
export function normalize(raw: string): { ok: true; value: string } | { ok: false; error: ScanError } {
  const trimmed = raw.replace(/^[\s\u3000]+|[\s\u3000]+$/g, '');
  if (trimmed === '') return { ok: false, error: { code: 'scan_empty' } };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) return { ok: false, error: { code: 'scan_control_character', scanned: trimmed.replace(/[\u0000-\u001f\u007f]/g, '') } };
  if (KANA.test(trimmed)) return { ok: false, error: { code: 'scan_ime_on', scanned: trimmed } };
  return { ok: true, value: trimmed.normalize('NFKC').toUpperCase() };
}

export interface ClassifyContext {
  /** Prefixes of this site's Kura IDs (a code with one of them must check). */
  idPrefixes: string[];
}

/**
 * Decides what a scan is. Command barcodes are `CMD-DONE`, `CMD-CANCEL`, `CMD-UNDO`; user
 * badges `USR-…`; position labels `BOX/A1`; container codes contain a hyphen; anything else is
 * a specimen: a Kura ID (checked) or a pre-barcoded tube code.
 */
export function classify(raw: string, ctx: ClassifyContext): { ok: true; scan: Scan } | { ok: false; error: ScanError } {
  const n = normalize(raw);
  if (!n.ok) return n;
  const s = n.value;
  const cmd = /^CMD-(DONE|CANCEL|UNDO)$/.exec(s);
  if (cmd) return { ok: true, scan: { kind: 'command', command: cmd[1].toLowerCase() as 'done' | 'cancel' | 'undo' } };
  const badge = /^USR-([0-9A-Z]+)$/.exec(s);
  if (badge) return { ok: true, scan: { kind: 'badge', user: badge[1] } };
  const pos = /^([0-9A-Z-]{2,})\/([0-9A-Z]+(?:-[0-9A-Z]+)?)$/.exec(s);
  if (pos) return { ok: true, scan: { kind: 'position', container: pos[1], position: pos[2] } };
  const bad = /[^0-9A-Z*-]/.exec(s);
  if (bad) return { ok: false, error: { code: 'scan_invalid_character', scanned: s, character: bad[0] } };
  if (s.includes('-')) return { ok: true, scan: { kind: 'container', code: s } };
  if (isKuraId(s)) return { ok: true, scan: { kind: 'specimen', code: s, kura: true } };
  if (ctx.idPrefixes.some((p) => s.startsWith(p)) && s.length >= 4) {
    return { ok: false, error: { code: 'scan_wrong_check_character', scanned: s, expected: checkChar(s.slice(0, -1)) } };
  }
  if (/^[0-9A-Z]{4,}$/.test(s)) return { ok: true, scan: { kind: 'specimen', code: s, kura: false } };
  return { ok: false, error: { code: 'scan_invalid_character', scanned: s, character: s.includes('*') ? '*' : s } };
}

/**
 * Tells a scanner from a person: a scanner types a whole code in a burst, a few milliseconds
 * between keys. `times` are the keydown timestamps (ms) of one entry, Enter excluded.
 */
export function isScanner(times: number[], maxMeanGapMs = 25): boolean {
  if (times.length < 4) return false;
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  return mean <= maxMeanGapMs && Math.max(...gaps) <= maxMeanGapMs * 4;
}
