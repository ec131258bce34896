import { describe, expect, it } from 'vitest';
import { checkChar, classify, isKuraId, isScanner, normalize } from '../lib/scan';

const ctx = { idPrefixes: ['NCC', 'DEMO'] };
const id = (data: string) => data + checkChar(data);

describe('check character', () => {
  it('matches the published example', () => expect(checkChar('G123498654321')).toBe('H'));
  it('validates whole IDs', () => {
    expect(isKuraId('G123498654321H')).toBe(true);
    expect(isKuraId('G123498654321X')).toBe(false);
  });
});

describe('classify', () => {
  const ok = id('NCC260001234');
  const cases: [string, unknown][] = [
    [ok, { kind: 'specimen', code: ok, kura: true }],
    [ok.toLowerCase(), { kind: 'specimen', code: ok, kura: true }],
    [[...ok].map((c) => String.fromCharCode(c.charCodeAt(0) - 0x21 + 0xff01)).join(''), { kind: 'specimen', code: ok, kura: true }],
    ['FS06551897', { kind: 'specimen', code: 'FS06551897', kura: false }],
    ['F80-01-R01-B01', { kind: 'container', code: 'F80-01-R01-B01' }],
    ['BX-0001/C4', { kind: 'position', container: 'BX-0001', position: 'C4' }],
    ['USR-0042', { kind: 'badge', user: '0042' }],
    ['cmd-done', { kind: 'command', command: 'done' }],
  ];
  it.each(cases)('%s', (raw, want) => {
    const r = classify(raw, ctx);
    expect(r.ok && r.scan).toEqual(want);
  });
  const errors: [string, string][] = [
    ['NCC2600012340', 'scan_wrong_check_character'],
    ['', 'scan_empty'],
    ['   ', 'scan_empty'],
    ['ＮＣＣにいろく', 'scan_ime_on'],
    ['ｱｲｳ', 'scan_ime_on'],
    ['NCC\u001d260', 'scan_control_character'],
    ['NCC#26', 'scan_invalid_character'],
  ];
  it.each(errors)('%s → %s', (raw, code) => {
    const r = classify(raw, ctx);
    expect(r.ok ? 'ok' : r.error.code).toBe(code);
  });
  it('names the expected check character', () => {
    const r = classify('NCC2600012340', ctx);
    expect(!r.ok && r.error.code === 'scan_wrong_check_character' && r.error.expected).toBe(checkChar('NCC260001234'));
  });
});

describe('normalize', () => {
  it('upper-cases what Caps Lock inverted', () => expect(normalize('ncc26')).toEqual({ ok: true, value: 'NCC26' }));
});

describe('scanner or person', () => {
  const burst = (n: number, gap: number) => Array.from({ length: n }, (_, i) => 1000 + i * gap);
  it.each([
    [burst(14, 5), true],
    [burst(14, 20), true],
    [burst(14, 120), false],
    [burst(3, 5), false],
    [[0, 5, 10, 400, 405, 410], false],
  ])('%j → %s', (times, want) => expect(isScanner(times as number[])).toBe(want));
});
