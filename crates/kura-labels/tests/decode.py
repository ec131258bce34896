#!/usr/bin/env python3
"""Decodes every barcode in PNG files with zxing-cpp (an independent decoder).

Prints one JSON object per file: {"file": ..., "symbols": [[format, text], ...]}.
"""
import json
import sys

import zxingcpp
from PIL import Image

for path in sys.argv[1:]:
    image = Image.open(path).convert("L")
    found = zxingcpp.read_barcodes(image, formats=(zxingcpp.BarcodeFormat.DataMatrix, zxingcpp.BarcodeFormat.Code128))
    print(json.dumps({"file": path, "symbols": [[r.format.name, r.text] for r in found]}, ensure_ascii=False))
