//! Text to a 1-bit bitmap at a printer's resolution, from the bundled font's outlines: what a
//! Zebra gets as a graphic field (`^GF`) when its own font cannot draw the text (Japanese on a
//! printer with no Asian font). The glyphs sit where the PDF puts them (the same advances), so
//! both outputs of one layout agree.

use crate::text;

/// Rows of bits, most significant bit first, 1 = a burnt dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    pub width: usize,
    pub height: usize,
    pub bytes_per_row: usize,
    pub data: Vec<u8>,
}

impl Bitmap {
    pub fn new(width: usize, height: usize) -> Bitmap {
        let bytes_per_row = width.div_ceil(8);
        Bitmap {
            width,
            height,
            bytes_per_row,
            data: vec![0; bytes_per_row * height],
        }
    }

    #[cfg(test)]
    pub fn get(&self, x: usize, y: usize) -> bool {
        x < self.width
            && y < self.height
            && self.data[y * self.bytes_per_row + x / 8] & (0x80 >> (x % 8)) != 0
    }

    fn set(&mut self, x: usize, y: usize) {
        if x < self.width && y < self.height {
            self.data[y * self.bytes_per_row + x / 8] |= 0x80 >> (x % 8);
        }
    }

    #[cfg(test)]
    pub fn ink(&self) -> usize {
        self.data.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// The rows as `^GF` ASCII hex with Zebra's compression: a run of one hex digit is a count
    /// (G–Y = 1–19, g–z = 20–400, summed) and the digit, `,` ends a row with zeros, `:` repeats
    /// the row above.
    pub fn zpl_ascii(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = String::new();
        let mut prev: Option<&[u8]> = None;
        for row in self.data.chunks(self.bytes_per_row.max(1)) {
            if prev == Some(row) {
                out.push(':');
                continue;
            }
            prev = Some(row);
            let mut digits: Vec<u8> = row
                .iter()
                .flat_map(|b| [HEX[(b >> 4) as usize], HEX[(b & 15) as usize]])
                .collect();
            let full = digits.len();
            while digits.last() == Some(&b'0') {
                digits.pop();
            }
            let mut i = 0;
            while i < digits.len() {
                let c = digits[i];
                let mut n = 1;
                while i + n < digits.len() && digits[i + n] == c {
                    n += 1;
                }
                i += n;
                let mut left = n;
                while left > 1 {
                    // One count prefix says at most 400 + 19.
                    let take = left.min(419);
                    let (tens, ones) = (take / 20, take % 20);
                    if tens > 0 {
                        out.push((b'f' + tens as u8) as char);
                    }
                    if ones > 0 {
                        out.push((b'F' + ones as u8) as char);
                    }
                    out.push(c as char);
                    left -= take;
                }
                if left == 1 {
                    out.push(c as char);
                }
            }
            if digits.len() < full {
                out.push(',');
            }
        }
        out
    }
}

/// Line segments of `s` set at `size_pt` with its pen at `x`, baseline at `baseline` (mm), in
/// dots relative to (`left`, `top`) dots, y down.
fn edges(
    s: &str,
    x: f64,
    baseline: f64,
    size_pt: f64,
    dot: f64,
    left: f64,
    top: f64,
) -> Vec<[f64; 4]> {
    let em = size_pt * 25.4 / 72.0;
    let mut out = Vec::new();
    let mut pen = x;
    for c in s.chars() {
        if let Some(outline) = text::outline(c) {
            let map =
                |(u, v): (f64, f64)| ((pen + u * em) / dot - left, (baseline - v * em) / dot - top);
            for ring in outline {
                let Some(&(u0, v0, _)) = ring.first() else {
                    continue;
                };
                let start = map((u0, v0));
                let mut last = start;
                let mut ctrl: Vec<(f64, f64)> = Vec::new();
                for &(u, v, bezier) in &ring[1..] {
                    let p = map((u, v));
                    if bezier {
                        ctrl.push(p);
                        continue;
                    }
                    if ctrl.len() == 2 {
                        let (c1, c2) = (ctrl[0], ctrl[1]);
                        const STEPS: usize = 8;
                        for k in 1..=STEPS {
                            let t = k as f64 / STEPS as f64;
                            let mt = 1.0 - t;
                            let q = (
                                mt * mt * mt * last.0
                                    + 3.0 * mt * mt * t * c1.0
                                    + 3.0 * mt * t * t * c2.0
                                    + t * t * t * p.0,
                                mt * mt * mt * last.1
                                    + 3.0 * mt * mt * t * c1.1
                                    + 3.0 * mt * t * t * c2.1
                                    + t * t * t * p.1,
                            );
                            out.push([last.0, last.1, q.0, q.1]);
                            last = q;
                        }
                    } else {
                        out.push([last.0, last.1, p.0, p.1]);
                    }
                    ctrl.clear();
                    last = p;
                }
                if last != start {
                    out.push([last.0, last.1, start.0, start.1]);
                }
            }
        }
        pen += text::advance(c) * em;
    }
    out
}

/// Fills the outlines (non-zero winding) into a `w` × `h` bitmap, 4 × 4 samples a dot; a dot is
/// burnt when at least 6 of its 16 samples are inside, which keeps the hairlines of small
/// kanji on a 203-dpi head.
fn fill(edges: &[[f64; 4]], w: usize, h: usize) -> Bitmap {
    const S: usize = 4;
    let mut cover = vec![0u8; w * h];
    let mut xs: Vec<(f64, i32)> = Vec::new();
    for sy in 0..h * S {
        let yc = (sy as f64 + 0.5) / S as f64;
        xs.clear();
        for &[x0, y0, x1, y1] in edges {
            if y0 == y1 {
                continue;
            }
            let (lo, hi, dir) = if y0 < y1 { (y0, y1, 1) } else { (y1, y0, -1) };
            if yc >= lo && yc < hi {
                xs.push((x0 + (yc - y0) / (y1 - y0) * (x1 - x0), dir));
            }
        }
        xs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut wind = 0;
        let mut start = 0.0;
        let row = sy / S;
        for &(x, dir) in &xs {
            let before = wind;
            wind += dir;
            if before == 0 && wind != 0 {
                start = x;
            } else if before != 0 && wind == 0 {
                // Samples whose centre lies inside [start, x).
                let first = (start * S as f64 - 0.5).ceil().max(0.0) as usize;
                let last = (x * S as f64 - 0.5).ceil().max(0.0) as usize;
                for sx in first..last.min(w * S) {
                    cover[row * w + sx / S] += 1;
                }
            }
        }
    }
    let mut bm = Bitmap::new(w, h);
    for y in 0..h {
        for x in 0..w {
            if cover[y * w + x] >= 6 {
                bm.set(x, y);
            }
        }
    }
    bm
}

/// `s` as the PDF sets it (pen at `x`, baseline at `baseline`, mm), drawn into the box
/// (`left`, `top`, `w`, `h`) in dots of `dot` mm.
pub fn text_bitmap(
    s: &str,
    x: f64,
    baseline: f64,
    size_pt: f64,
    dot: f64,
    (left, top, w, h): (i64, i64, usize, usize),
) -> Bitmap {
    let e = edges(s, x, baseline, size_pt, dot, left as f64, top as f64);
    fill(&e, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inverse of [`Bitmap::zpl_ascii`], as a printer reads it.
    fn expand(s: &str, bytes_per_row: usize) -> Vec<u8> {
        let width = bytes_per_row * 2;
        let mut rows: Vec<Vec<u8>> = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        let mut count = 0usize;
        let end_row = |cur: &mut Vec<u8>, rows: &mut Vec<Vec<u8>>| {
            rows.push(std::mem::take(cur));
        };
        for c in s.bytes() {
            match c {
                b'G'..=b'Y' => count += (c - b'F') as usize,
                b'g'..=b'z' => count += (c - b'f') as usize * 20,
                b',' => {
                    cur.resize(width, b'0');
                    end_row(&mut cur, &mut rows);
                }
                b':' => {
                    let last = rows.last().cloned().unwrap();
                    rows.push(last);
                }
                _ => {
                    for _ in 0..count.max(1) {
                        cur.push(c);
                    }
                    count = 0;
                    if cur.len() == width {
                        end_row(&mut cur, &mut rows);
                    }
                }
            }
        }
        assert!(cur.is_empty(), "a row was left unfinished");
        rows.concat()
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn compression_reads_back_as_the_bitmap() {
        let mut bm = Bitmap::new(900, 6);
        for x in 0..900 {
            bm.set(x, 1); // a run longer than one count prefix says
            bm.set(x, 2);
        }
        for x in (0..40).step_by(3) {
            bm.set(x, 4);
        }
        bm.set(899, 5);
        let z = bm.zpl_ascii();
        assert!(z.contains(':') && z.contains(','), "{z}");
        assert!(z.len() < bm.data.len(), "compressed: {} chars", z.len());
        assert_eq!(expand(&z, bm.bytes_per_row), bm.data);
    }

    #[test]
    fn kanji_are_filled_where_their_strokes_are() {
        // 研 at 24 pt on a 300-dpi head: 100 dots an em.
        let dot = 25.4 / 300.0;
        let bm = text_bitmap("研", 0.0, 8.0, 24.0, dot, (0, 0, 110, 110));
        let ink = bm.ink();
        assert!(ink > 1500 && ink < 6000, "ink {ink}");
        let txt = text_bitmap("研究", 0.0, 8.0, 24.0, dot, (0, 0, 220, 110));
        assert!(txt.ink() > ink * 3 / 2, "two glyphs draw more than one");
        // Strokes in the top and the bottom half of the em, nothing right of the advance.
        let rows_with_ink =
            |ys: std::ops::Range<usize>| ys.filter(|&y| (0..110).any(|x| bm.get(x, y))).count();
        assert!(rows_with_ink(0..50) > 10 && rows_with_ink(50..110) > 10);
        assert!((0..110).all(|y| (102..110).all(|x| !bm.get(x, y))));
        // A space draws nothing.
        assert_eq!(
            text_bitmap(" ", 0.0, 8.0, 24.0, dot, (0, 0, 50, 110)).ink(),
            0
        );
    }
}
