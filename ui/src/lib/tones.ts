// Success and error tones (Web Audio): one short high beep for "done", two low ones for "no".
// A workstation without sound (or a browser that refuses audio) stays silent, never fails.
let ctx: AudioContext | null = null;

function beep(freq: number, at: number, ms: number) {
  if (!ctx) return;
  const o = ctx.createOscillator();
  const g = ctx.createGain();
  o.type = 'square';
  o.frequency.value = freq;
  g.gain.value = 0.08;
  o.connect(g).connect(ctx.destination);
  o.start(ctx.currentTime + at);
  o.stop(ctx.currentTime + at + ms / 1000);
}

export function tone(kind: 'ok' | 'error' | 'warn'): void {
  try {
    ctx ??= new AudioContext();
    if (kind === 'ok') beep(1760, 0, 90);
    else if (kind === 'warn') beep(880, 0, 150);
    else {
      beep(220, 0, 160);
      beep(220, 0.22, 160);
    }
  } catch {
    ctx = null;
  }
}
