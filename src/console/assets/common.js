// What every console page shares: the API key (kept in sessionStorage
// only), calls to this origin's /v1 API with it, and errors as sentences a
// reader can act on.

import {
  VerificationError,
  bytesToHex,
  checkCosignatures,
  parseCosignerKey,
  parseVerifierKey,
} from "./verify.js";

const KEY_SLOT = "ledgerline.apiKey";

export const $ = (id) => document.getElementById(id);

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** What a failed request or check means to the person reading the page. */
export function explain(error) {
  if (error instanceof VerificationError) {
    return `Verification failed: ${error.message}.`;
  }
  if (!(error instanceof ApiError)) {
    return `Something went wrong: ${error.message}`;
  }
  const reason = error.message ? ` The server said: ${error.message}` : "";
  switch (error.status) {
    case 401:
      return `Not signed in (401): enter a valid API key above.${reason}`;
    case 403:
      return `This API key's role may not see this (403).${reason}`;
    case 404:
      return `Not found (404).${reason}`;
    case 413:
      return `The file is too large for the server (413).${reason}`;
    case 422:
      return `The server could not use that input (422).${reason}`;
    case 429:
      return `Too many requests (429): wait a moment and try again.${reason}`;
    default:
      return `The server answered ${error.status}.${reason}`;
  }
}

/** The `Authorization` header for the entered key, if any. */
export function authHeaders() {
  const key = sessionStorage.getItem(KEY_SLOT);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** The API's error for a failed `reply`, with the message its body gives. */
export async function replyError(reply) {
  let message = "";
  try {
    message = (await reply.json()).error.message;
  } catch {
    // Not an API error body; the status says enough.
  }
  return new ApiError(reply.status, message);
}

/** A request to the API with the key; JSON back unless `text`. */
export async function api(path, { text = false, method = "GET", body, contentType, accept } = {}) {
  const headers = authHeaders();
  if (contentType) headers["Content-Type"] = contentType;
  if (accept) headers.Accept = accept;
  let reply;
  try {
    reply = await fetch(path, { method, headers, body });
  } catch (error) {
    throw new Error(`the server cannot be reached (${error.message})`);
  }
  if (!reply.ok) throw await replyError(reply);
  return text ? reply.text() : reply.json();
}

let verifierKey = null;

/**
 * The log's verifier key (`GET /v1/key`), its id checked and parsed, with
 * its text: fetched once per page and shared by every check on it.
 */
export function logVerifier() {
  verifierKey ??= api("/v1/key").then(async ({ key }) => ({ key, verifier: await parseVerifierKey(key) }));
  verifierKey.catch(() => {
    verifierKey = null;
  });
  return verifierKey;
}

let policy = null;

/**
 * The server's witness policy (`GET /v1/witnesses`): {quorum, witnesses:
 * [{name, verifierKey, key}]}, each key's id checked and parsed; quorum 0
 * and no witnesses when the log runs without one. Fetched once per page.
 */
export function witnessPolicy() {
  policy ??= api("/v1/witnesses").then(async ({ quorum, witnesses }) => ({
    quorum,
    witnesses: await Promise.all(
      witnesses.map(async ({ name, verifier_key }) => ({
        name,
        verifierKey: verifier_key,
        key: await parseCosignerKey(verifier_key),
      })),
    ),
  }));
  policy.catch(() => {
    policy = null;
  });
  return policy;
}

/**
 * The cosignatures on a verified `checkpoint` against the witness policy,
 * checked in this browser: {quorumMet, marks}, one mark per witness that
 * cosigned (or whose line fails) and one for the quorum. No marks without
 * a policy.
 */
export async function cosignatureMarks(checkpoint) {
  const { quorum, witnesses } = await witnessPolicy();
  if (!witnesses.length) return { quorumMet: false, marks: [] };
  const results = await checkCosignatures(checkpoint, witnesses);
  const verified = results.filter((r) => r.verified).length;
  const marks = results
    .filter((r) => !r.missing)
    .map((r) =>
      r.verified
        ? mark(true, `${r.name}: cosignature verified (${r.time.toISOString().replace(".000Z", "Z")})`)
        : mark(false, `${r.name}: ${r.reason}`),
    );
  const quorumMet = verified >= quorum;
  marks.push(
    quorumMet
      ? mark(true, `witnessed: ${verified} of ${quorum} required cosignatures verified`)
      : mark(false, `not witnessed: ${verified} of ${quorum} required cosignatures verified`),
  );
  return { quorumMet, marks };
}

/** A verdict: a tick or a cross (drawn by the stylesheet) and words. */
export function mark(ok, text) {
  const span = document.createElement("span");
  span.className = ok ? "ok" : "bad";
  span.textContent = text;
  return span;
}

/** An element with text, for building tables and lists. */
export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

export const hexOf = bytesToHex;

/** Shows `error` in the page's alert box (id "error"). */
export function showError(error) {
  const box = $("error");
  box.textContent = explain(error);
  box.hidden = false;
}

export function clearError() {
  $("error").hidden = true;
}

/**
 * Wires the key form: `onKey` runs when a key is entered (and on load),
 * so the page can fetch what the key may see.
 */
export function bindKeyForm(onKey) {
  const input = $("api-key");
  input.value = sessionStorage.getItem(KEY_SLOT) ?? "";
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_SLOT, input.value.trim());
    clearError();
    Promise.resolve(onKey()).catch(showError);
  });
  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_SLOT);
    input.value = "";
  });
}
