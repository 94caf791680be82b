// Proof checks that run in the reader's own browser, with WebCrypto only,
// so that an auditor need not take the server's word: RFC 6962 leaf and
// node hashes, inclusion and consistency proofs (the algorithms of RFC 9162
// section 2.1.3.2 and 2.1.4.2), and C2SP signed notes with Ed25519
// signatures (https://c2sp.org/signed-note).
//
// Every check throws a VerificationError that says what failed; nothing
// here trusts a root, hash or size the server sent unless a signature
// covers it.

export class VerificationError extends Error {}

const fail = (message) => {
  throw new VerificationError(message);
};

export function hexToBytes(hex) {
  if (typeof hex !== "string" || !/^([0-9a-f]{2})*$/i.test(hex)) {
    fail(`${JSON.stringify(hex)} is not hex`);
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function base64ToBytes(text) {
  let binary;
  try {
    binary = atob(text);
  } catch {
    fail(`${JSON.stringify(text.slice(0, 40))} is not base64`);
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** RFC 6962 section 2.1: SHA-256(0x00 || leaf). */
export async function leafHash(leaf) {
  return sha256(concat(Uint8Array.of(0), leaf));
}

/** RFC 6962 section 2.1: SHA-256(0x01 || left || right). */
async function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function toSize(value, what) {
  const n = BigInt(value);
  if (n < 0n) fail(`${what} ${value} is negative`);
  return n;
}

/**
 * The root that an inclusion proof of `hash` at `index` in a tree of `size`
 * leaves leads to (RFC 9162 section 2.1.3.2). Compare it with a signed root.
 */
export async function rootFromInclusion(index, size, hash, proof) {
  let fn = toSize(index, "index");
  let sn = toSize(size, "tree size") - 1n;
  if (fn > sn) fail(`leaf ${index} is outside a tree of ${size} leaves`);
  let root = hash;
  for (const sibling of proof) {
    if (sn === 0n) fail("the inclusion proof is longer than the tree is deep");
    if ((fn & 1n) === 1n || fn === sn) {
      root = await nodeHash(sibling, root);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      root = await nodeHash(root, sibling);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail("the inclusion proof is shorter than the tree is deep");
  return root;
}

/**
 * Checks that the tree of `secondSize` leaves with root `secondRoot` extends
 * the tree of `firstSize` leaves with root `firstRoot` (RFC 9162 section
 * 2.1.4.2): the log was appended to, never rewritten.
 */
export async function verifyConsistency(firstSize, secondSize, firstRoot, secondRoot, proof) {
  const first = toSize(firstSize, "tree size");
  const second = toSize(secondSize, "tree size");
  if (first > second) fail(`tree size ${firstSize} is larger than ${secondSize}`);
  if (first === second) {
    if (proof.length !== 0) fail("a proof between equal sizes must be empty");
    if (!equal(firstRoot, secondRoot)) fail("equal sizes with different roots: the log forked");
    return;
  }
  if (first === 0n) {
    if (proof.length !== 0) fail("a proof from the empty tree must be empty");
    return;
  }
  if (proof.length === 0) fail("the consistency proof is empty");
  let path = proof;
  if ((first & (first - 1n)) === 0n) path = [firstRoot, ...proof];
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) fail("the consistency proof is longer than the tree is deep");
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail("the consistency proof is shorter than the tree is deep");
  if (!equal(fr, firstRoot)) {
    fail(`the proof does not lead to the signed root of size ${firstSize}`);
  }
  if (!equal(sr, secondRoot)) {
    fail(`the proof does not lead to the signed root of size ${secondSize}`);
  }
}

const encoder = new TextEncoder();

/** Signed-note signature types (c2sp.org/signed-note, tlog-cosignature). */
const ED25519 = 0x01;
const COSIGNATURE_V1 = 0x04;

/**
 * A signed-note verifier key, `name+hex8+base64(type || Ed25519 public
 * key)`, checked: its key id must be the first four bytes of
 * SHA-256(name || "\n" || type || public key).
 */
async function parseKey(text, type, what) {
  // The name holds no "+"; the base64 key may.
  const trimmed = text.trim();
  const first = trimmed.indexOf("+");
  const second = trimmed.indexOf("+", first + 1);
  if (first <= 0 || second !== first + 9) fail(`the ${what} is not name+hash+key`);
  const name = trimmed.slice(0, first);
  const idHex = trimmed.slice(first + 1, second);
  const key = base64ToBytes(trimmed.slice(second + 1));
  if (key.length !== 33 || key[0] !== type) {
    fail(`the ${what} is not an ${type === COSIGNATURE_V1 ? "Ed25519 cosignature/v1" : "Ed25519"} key`);
  }
  const id = (await sha256(concat(encoder.encode(name + "\n"), key))).slice(0, 4);
  if (bytesToHex(id) !== idHex.toLowerCase()) {
    fail(`the ${what}'s id does not match its name and key`);
  }
  const publicKey = await crypto.subtle.importKey(
    "raw",
    key.slice(1),
    { name: "Ed25519" },
    false,
    ["verify"],
  );
  return { name, id, publicKey };
}

/** The log's note verifier key (type 0x01). */
export function parseVerifierKey(text) {
  return parseKey(text, ED25519, "verifier key");
}

/**
 * A witness's cosignature/v1 verifier key (type 0x04,
 * c2sp.org/tlog-cosignature).
 */
export function parseCosignerKey(text) {
  return parseKey(text, COSIGNATURE_V1, "witness key");
}

/**
 * A C2SP checkpoint note, its signature checked against `verifier` (from
 * parseVerifierKey). Returns its origin, size, root, body (the signed
 * text) and the signature lines of other keys, `{name, bytes}`, for
 * checkCosignatures.
 */
export async function verifyCheckpoint(note, verifier) {
  const split = note.indexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) fail("the checkpoint is not a signed note");
  const body = note.slice(0, split + 1);
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3) fail("the checkpoint body has fewer than three lines");
  const [origin, sizeText, rootBase64] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) fail(`the tree size ${JSON.stringify(sizeText)} is not a number`);
  const root = base64ToBytes(rootBase64);
  if (root.length !== 32) fail("the root hash is not 32 bytes");
  let signed = false;
  const others = [];
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match) fail(`${JSON.stringify(line)} is not a signature line`);
    const signature = base64ToBytes(match[2]);
    if (match[1] !== verifier.name || signature.length < 4 || !equal(signature.slice(0, 4), verifier.id)) {
      others.push({ name: match[1], bytes: signature });
      continue;
    }
    if (signature.length !== 68) fail("the log's signature is not an Ed25519 signature");
    const ok = await crypto.subtle.verify(
      { name: "Ed25519" },
      verifier.publicKey,
      signature.slice(4),
      encoder.encode(body),
    );
    if (!ok) fail("the log's signature on the checkpoint does not verify");
    signed = true;
  }
  if (!signed) fail(`the checkpoint carries no signature by ${verifier.name}`);
  return { origin, size: BigInt(sizeText), root, body, others };
}

/** The largest timestamp a cosignature may carry, 2^63 - 1. */
const TIMESTAMP_MAX = (1n << 63n) - 1n;

/**
 * Each witness's cosignature on `checkpoint` (from verifyCheckpoint),
 * checked as c2sp.org/tlog-cosignature says: the line by the witness's key
 * name and id holds a big-endian timestamp and an Ed25519 signature over
 * "cosignature/v1\ntime <timestamp>\n" and the checkpoint body.
 * `witnesses` is [{name, key}] with keys from parseCosignerKey. Returns one
 * entry per witness: {name, verified, time (a Date), reason}; a witness
 * that did not cosign is {name, verified: false, missing: true}.
 */
export async function checkCosignatures(checkpoint, witnesses) {
  const results = [];
  for (const { name, key } of witnesses) {
    const line = checkpoint.others.find(
      (o) => o.name === key.name && o.bytes.length >= 4 && equal(o.bytes.slice(0, 4), key.id),
    );
    if (!line) {
      results.push({ name, verified: false, missing: true, reason: "no cosignature" });
      continue;
    }
    if (line.bytes.length !== 4 + 8 + 64) {
      results.push({ name, verified: false, reason: "the cosignature is not a timestamp and an Ed25519 signature" });
      continue;
    }
    const timestamp = new DataView(line.bytes.buffer, line.bytes.byteOffset + 4, 8).getBigUint64(0);
    if (timestamp > TIMESTAMP_MAX) {
      results.push({ name, verified: false, reason: "the cosignature's timestamp is out of range" });
      continue;
    }
    const message = `cosignature/v1\ntime ${timestamp}\n${checkpoint.body}`;
    const ok = await crypto.subtle.verify(
      { name: "Ed25519" },
      key.publicKey,
      line.bytes.slice(12),
      encoder.encode(message),
    );
    results.push(
      ok
        ? { name, verified: true, time: new Date(Number(timestamp) * 1000) }
        : { name, verified: false, reason: "the cosignature does not verify over the checkpoint" },
    );
  }
  return results;
}

/**
 * Checks that `leaf` (the event's exact bytes) is leaf `index` of the
 * signed `checkpoint` (from verifyCheckpoint), given the proof's sibling
 * hashes. Returns the leaf hash.
 */
export async function verifyInclusion(leaf, index, checkpoint, proof) {
  const hash = await leafHash(leaf);
  const root = await rootFromInclusion(index, checkpoint.size, hash, proof);
  if (!equal(root, checkpoint.root)) {
    fail(`the proof of seq ${index} does not lead to the signed root of size ${checkpoint.size}`);
  }
  return hash;
}
