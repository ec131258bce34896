#!/usr/bin/env python3
"""Compares a label drawn from ZPL (by Zebrash) with the same label rasterised from the PDF.

Reads JSON from the file in argv[1]: a list of
  {"name": ..., "zpl_png": ..., "pdf_png": ..., "origin": [x, y], "size": [w, h],
   "elements": [{"what": ..., "rect": [x, y, w, h], "glyphs": [[x, y, w, h], ...]}, ...]}
with everything in printer dots (one pixel of both images). Prints one JSON line per label:
  {"name": ..., "problems": [...], "agreement": [...]}

An element is missing when either image has no ink in its box. The characters that the PDF
draws from the font's outlines (the boxes in "glyphs": Japanese, µ, °) must look the same in
both: most of the ink of each image lies within a dot of the other's (an empty-box glyph does
not). ASCII is Helvetica in the PDF and another font on the printer, so only its ink is asked.
"""
import json
import sys

from PIL import Image, ImageFilter


def dark(img):
    return img.convert("L").point(lambda v: 255 if v < 128 else 0)


def ink(img, box):
    return sum(1 for v in img.crop(box).getdata() if v)


def within(a, b_grown):
    """(a's ink on b's ink grown by a dot, a's ink)."""
    pa = list(a.getdata())
    pb = list(b_grown.getdata())
    return sum(1 for v, w in zip(pa, pb) if v and w), sum(1 for v in pa if v)


jobs = json.load(open(sys.argv[1]))
for j in jobs:
    zpl = dark(Image.open(j["zpl_png"]))
    ox, oy = j["origin"]
    w, h = j["size"]
    pdf = dark(Image.open(j["pdf_png"])).crop((ox, oy, ox + w, oy + h))
    problems, agreement = [], []
    if zpl.size != (w, h):
        problems.append(f"the ZPL image is {zpl.size}, the label {w}x{h} dots")
    for e in j["elements"]:
        x, y, ew, eh = e["rect"]
        box = (max(0, x - 1), max(0, y - 1), min(w, x + ew + 1), min(h, y + eh + 1))
        zi, pi = ink(zpl, box), ink(pdf, box)
        if zi == 0:
            problems.append(f"{e['what']}: nothing drawn from the ZPL in {box}")
        if pi == 0:
            problems.append(f"{e['what']}: nothing drawn from the PDF in {box}")
        if e["glyphs"] and zi and pi:
            grow = ImageFilter.MaxFilter(3)
            za = zn = pa = pn = 0
            for gx, gy, gw, gh in e["glyphs"]:
                gbox = (max(0, gx - 1), max(0, gy - 1), min(w, gx + gw + 1), min(h, gy + gh + 1))
                zc, pc = zpl.crop(gbox), pdf.crop(gbox)
                on, n = within(zc, pc.filter(grow))
                za, zn = za + on, zn + n
                on, n = within(pc, zc.filter(grow))
                pa, pn = pa + on, pn + n
            if zn == 0 or pn == 0:
                problems.append(f"{e['what']}: its glyphs are missing ({zn} dots from the ZPL, {pn} from the PDF)")
                continue
            a, b = za / zn, pa / pn
            agreement.append([e["what"], round(a, 3), round(b, 3)])
            if a < 0.85 or b < 0.85:
                problems.append(f"{e['what']}: the ZPL's text does not look like the PDF's ({a:.2f}, {b:.2f} of the ink agrees)")
    print(json.dumps({"name": j["name"], "problems": problems, "agreement": agreement}, ensure_ascii=False))
