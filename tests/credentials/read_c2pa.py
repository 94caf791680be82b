"""Reads a file's Content Credentials with c2pa-python (the CAI's reader,
installed from PyPI), trusting the given root certificate, and prints what
an outsider sees as one JSON object: the validation state and failure
codes, the digital source types of the actions, the ingredients, and our
provenance assertion with an RFC 9162 check of its log proof's inclusion
hashes against the checkpoint's root, computed here with hashlib alone.

Usage: read_c2pa.py FILE TRUST_ANCHOR.pem
"""

import base64
import hashlib
import json
import sys
from importlib.metadata import version

import c2pa


def inclusion_verifies(index, size, leaf_hash, proof, root):
    """RFC 9162 section 2.1.3.2, written out independently."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def check_tlog_proof(provenance):
    """Parses c2sp.org/tlog-proof@v1 and checks the inclusion of the leaf."""
    text = provenance["tlog_proof"]
    head, note = text.split("\n\n", 1)
    lines = head.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1", lines[0]
    rest = lines[1:]
    if rest and rest[0].startswith("extra "):
        rest = rest[1:]
    index = int(rest[0].removeprefix("index "))
    proof = [base64.b64decode(line) for line in rest[1:]]
    origin, size, root = note.split("\n")[:3]
    return {
        "index": index,
        "origin": origin,
        "size": int(size),
        "inclusion_verifies": inclusion_verifies(
            index,
            int(size),
            bytes.fromhex(provenance["published_leaf_hash"]),
            proof,
            base64.b64decode(root),
        ),
    }


def main():
    path, anchor_path = sys.argv[1], sys.argv[2]
    with open(anchor_path) as f:
        anchors = f.read()
    settings = c2pa.Settings.from_dict(
        {"trust": {"user_anchors": anchors}, "verify": {"verify_trust": True}}
    )
    context = c2pa.Context(settings)
    with open(path, "rb") as f:
        reader = c2pa.Reader("audio/wav", f, context=context)
        store = json.loads(reader.json())
        state = reader.get_validation_state()
        results = reader.get_validation_results() or {}
    active = store["manifests"][store["active_manifest"]]
    failures = [s["code"] for s in (results.get("activeManifest") or {}).get("failure", [])]
    source_types, steps = [], []
    provenance = None
    for assertion in active.get("assertions", []):
        label = assertion["label"]
        if label.startswith("c2pa.actions"):
            for action in assertion["data"]["actions"]:
                if "digitalSourceType" in action:
                    source_types.append(action["digitalSourceType"])
                parameters = action.get("parameters") or {}
                op = parameters.get("org.ledgerline.op")
                if op:
                    steps.append(
                        {"op": op, "params": json.loads(parameters["org.ledgerline.params"])}
                    )
        elif label == "org.ledgerline.provenance":
            provenance = assertion["data"]
    print(
        json.dumps(
            {
                "reader": "c2pa-python " + version("c2pa-python"),
                "state": state,
                "failures": failures,
                "source_types": source_types,
                "steps": steps,
                "ingredients": [
                    {
                        "title": i.get("title"),
                        "relationship": i.get("relationship"),
                        "instance_id": i.get("instance_id"),
                    }
                    for i in active.get("ingredients", [])
                ],
                "provenance": provenance,
                "log_proof": check_tlog_proof(provenance) if provenance else None,
            }
        )
    )


if __name__ == "__main__":
    main()
