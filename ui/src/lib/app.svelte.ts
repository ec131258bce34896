// The window's shared state: the current screen, language, the big feedback banner, the
// confirmation dialog and the scan-to-feedback timings. Screens import `app`, `tr`, `say`.
import { tick } from 'svelte';
import { backend, type BackendError, type Signing, type SyncStatus, type Who } from './backend';
import { errorText, lang as initialLang, setLang, t, type Lang } from './i18n';
import { tone } from './tones';

export const api = backend();

export type ScreenId = 'checkin' | 'checkout' | 'return' | 'move' | 'find' | 'detail' | 'register' | 'storage' | 'print' | 'settings' | 'sync' | 'people' | 'ship' | 'receive' | 'bulk';
export const SCREENS: ScreenId[] = ['checkin', 'checkout', 'return', 'move', 'find', 'register', 'storage', 'print', 'settings', 'sync', 'people', 'ship', 'receive', 'bulk'];

const LANG_KEY = 'kura.lang';
const saved = typeof localStorage !== 'undefined' ? (localStorage.getItem(LANG_KEY) as Lang | null) : null;
if (saved === 'en' || saved === 'ja') setLang(saved);

class AppState {
  screen = $state<ScreenId>('checkin');
  lang = $state<Lang>(initialLang());
  feedback = $state<{ ok: boolean; text: string; seq: number; warn?: string } | null>(null);
  busy = $state<string | null>(null);
  /** Of the long work under way, when it says how far it is. */
  progress = $state<{ done: number; total: number } | null>(null);
  confirm = $state<{ text: string; detail?: string; reason?: boolean; resolve: (v: string | false) => void } | null>(null);
  detailCode = $state<string | null>(null);
  printCodes = $state<string[]>([]);
  idPrefixes = $state<string[]>([]);
  actor = $state('');
  /** Where this workstation stands with the registry (polled). */
  sync = $state<SyncStatus | null>(null);
  /** Who the window acts for; a database with users is locked while nobody is signed in. */
  who = $state<Who | null>(null);
  /** A badge was scanned: its PIN is asked. */
  pinFor = $state<string | null>(null);
  /** An irreversible act waits for its electronic signature. */
  signing = $state<{ text: string; resolve: (s: Signing | null) => void } | null>(null);
}

export const app = new AppState();

// Until the user picks a language, the window follows the system locale (ja* → Japanese).
if (saved !== 'en' && saved !== 'ja') {
  api
    .systemLanguage()
    .then((l) => {
      if (l === 'en' || l === 'ja') {
        app.lang = l;
        setLang(l);
      }
    })
    .catch(() => {
      /* outside the window (tests): keep the default */
    });
}

/** Translates in the current language; reading `app.lang` makes templates follow a switch. */
export function tr(key: string, params: Record<string, unknown> = {}): string {
  return t(key, params, app.lang);
}

export function switchLang(l: Lang): void {
  app.lang = l;
  setLang(l);
  try {
    localStorage.setItem(LANG_KEY, l);
  } catch {
    /* no storage: the choice lasts this session */
  }
}

let seq = 0;
/** The big banner and the tone. */
export function say(ok: boolean, text: string, sound = true): void {
  app.feedback = { ok, text, seq: ++seq };
  if (sound) tone(ok ? 'ok' : 'error');
}

/** Adds a second line to the banner (a warning that does not change the answer). */
export function warn(text: string): void {
  if (app.feedback) app.feedback = { ...app.feedback, warn: text };
  else app.feedback = { ok: false, text, seq: ++seq };
}

/**
 * Reads the sync status: counters, never lists (it runs every 3 seconds, holding the backend
 * while it does; a scan says itself whether its specimen is in conflict or withdrawn). What
 * this and `refreshWho` ask of SQLite is checked by crates/kura-app/tests/plans.rs: a new call
 * here goes into its list too.
 */
export async function refreshSync(): Promise<void> {
  try {
    app.sync = await api.syncStatus();
  } catch {
    /* outside the window (tests), or the store busy: next time */
  }
}

export function fail(err: unknown): void {
  const e = err as BackendError;
  say(false, errorText(e && e.code ? e : { code: 'ipc_error', message: String(err) }));
  // The session ended (idle, disabled elsewhere): the window locks.
  if (e && ['sign_in_required', 'session_expired', 'user_disabled'].includes(e.code)) void refreshWho();
}

/** Whether the window is locked: a database with users and nobody signed in. */
export function locked(): boolean {
  return !!app.who?.secured && !app.who.user;
}

export async function refreshWho(): Promise<void> {
  try {
    // Keys and clicks since the last ask keep the session alive in the backend too.
    app.who = await api.who(Date.now() - lastActivity < 3500);
  } catch {
    /* outside the window (tests) */
  }
}

let lastActivity = Date.now();
/** Keys and clicks keep a session alive; after the site's idle time the window locks. */
export function touch(): void {
  lastActivity = Date.now();
}
export async function lockIfIdle(): Promise<void> {
  const w = app.who;
  if (w?.user && Date.now() - lastActivity > w.idle_secs * 1000) {
    app.who = await api.signOut();
    say(false, tr('auth.locked_idle'));
  }
}

export function go(screen: ScreenId): void {
  app.screen = screen;
}

export function showDetail(code: string): void {
  app.detailCode = code;
  app.screen = 'detail';
}

export function printCodes(codes: string[]): void {
  app.printCodes = codes;
  app.screen = 'print';
}

/** Asks before a destructive act; with `reason`, the answer is the reason typed (false: cancelled). */
export function ask(text: string, opts: { detail?: string; reason?: boolean } = {}): Promise<string | false> {
  return new Promise((resolve) => {
    app.confirm = { text, ...opts, resolve };
  });
}

/** Asks the signed-in person to sign (`null`: they cancelled). Only on a database with users. */
export function askSignature(text: string): Promise<Signing | null> {
  return new Promise((resolve) => {
    app.signing = { text, resolve };
  });
}

/** Runs long work with the progress bar showing `text`. */
export async function busy<T>(text: string, f: () => Promise<T>): Promise<T> {
  app.busy = text;
  try {
    return await f();
  } finally {
    app.busy = null;
  }
}

/** Runs long work that reports how far it is: the bar fills as `f`'s reports arrive. */
export async function busyWithProgress<T>(text: string, f: (report: (p: { done: number; total: number }) => void) => Promise<T>): Promise<T> {
  app.busy = text;
  app.progress = null;
  try {
    return await f((p) => (app.progress = { done: p.done, total: p.total }));
  } finally {
    app.busy = null;
    app.progress = null;
  }
}

// ---- measurement: scan-to-feedback (the Enter key event → the frame showing the result painted) ----

export interface Perf {
  launchMs: number | null;
  scans: number[];
  /** Of each scan: from the key event's timeStamp to the start of its handler. */
  waits: number[];
  /** Of each scan: from the key event's timeStamp to the end of its handler (the backend's answer
   * applied to the page state, before the frame). */
  handled: number[];
  /** Of each key typed into the scan bar: from its event's timeStamp to its handler (how far
   * behind the keys the page is while a burst arrives). */
  keyLags: number[];
}
declare global {
  interface Window {
    __kura: Perf;
  }
}
export const perf: Perf = { launchMs: null, scans: [], waits: [], handled: [], keyLags: [] };
if (typeof window !== 'undefined') window.__kura = perf;

/**
 * Records the time from `t0`, the Enter key event's own `timeStamp` (when the key reached the
 * page, before any handler ran), to a point after the frame carrying the result was painted: a
 * `requestAnimationFrame` callback runs just before that frame's paint, and a message posted
 * from it is a task, which runs only once the paint is done.
 */
export async function recordScan(t0: number, started: number): Promise<void> {
  const handled = performance.now() - t0;
  await tick();
  await new Promise<void>((r) =>
    requestAnimationFrame(() => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => r();
      ch.port2.postMessage(null);
    }),
  );
  perf.scans.push(performance.now() - t0);
  perf.waits.push(started - t0);
  perf.handled.push(handled);
  if (perf.scans.length > 10_000) {
    perf.scans.shift();
    perf.waits.shift();
    perf.handled.shift();
  }
  if (perf.keyLags.length > 100_000) perf.keyLags.splice(0, 50_000);
}
