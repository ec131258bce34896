#!/usr/bin/env python3
"""An inspector's check of a Kura audit report, independent of Kura's code.

It reads only two things: the text of an audit PDF (through pdftotext) and the events exported
with `kura audit --out events.jsonl`. From the events it takes each user's published signing key
(the `key` of their password `credential_set` events, in log order), verifies every `signed`
event's Ed25519 signature over "kura-signature/1\\n<event hash>\\n<meaning>\\n<time>" with the
`cryptography` package, and checks that the fingerprint of every key that signed (the first 16
bytes of the SHA-256 of the public key, in groups of four hex digits) is printed in the PDF for
every signature on a record the PDF lists (it prints each record's hash, first 16 digits).

    check.py --pdf report.pdf --events events.jsonl

Prints a JSON summary; exits 1 if any signature fails or a signer's fingerprint is missing.
"""

import argparse
import hashlib
import json
import subprocess
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fingerprint(public_hex):
    h = hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:32]
    return " ".join(h[i : i + 4] for i in range(0, 32, 4))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pdf", required=True)
    ap.add_argument("--events", required=True)
    a = ap.parse_args()
    text = subprocess.run(
        ["pdftotext", "-layout", a.pdf, "-"], check=True, capture_output=True, text=True
    ).stdout
    flat = " ".join(text.split())
    # A record's hash may wrap inside its table cell: looked for with the spaces taken out.
    compact = "".join(text.split())
    keys, verified, failed, fingerprints, printed = {}, 0, [], set(), 0
    with open(a.events, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            p = e["payload"]
            if e["kind"] == "credential_set" and p.get("secret") == "password" and p.get("key"):
                keys[p["user"]] = p["key"]["ed25519"]
            if e["kind"] != "signed" or "signature" not in p:
                continue
            signer = p["signer"]
            public = keys.get(signer)
            message = "kura-signature/1\n{}\n{}\n{}".format(
                p["event_hash"].lower(), p["meaning"], e["at"]
            ).encode()
            try:
                if public is None:
                    raise InvalidSignature("no published key")
                Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
                    bytes.fromhex(p["signature"]), message
                )
                verified += 1
                if p["event_hash"].lower()[:16] in compact:
                    printed += 1
                    fingerprints.add(fingerprint(public))
            except (InvalidSignature, ValueError) as err:
                failed.append({"event": e["event_id"], "signer": signer, "why": str(err) or "invalid"})
    missing = sorted(fp for fp in fingerprints if fp not in flat)
    print(json.dumps({"verified": verified, "printed": printed, "failed": failed, "fingerprints": sorted(fingerprints), "missing_in_pdf": missing}))
    sys.exit(1 if failed or missing else 0)


if __name__ == "__main__":
    main()
