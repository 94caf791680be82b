// The Audit page: the log's checkpoints, an event and a consistency
// proof, each verified in this browser (verify.js).

import * as verify from "./verify.js";
import {
  $,
  ApiError,
  api,
  bindKeyForm,
  clearError,
  cosignatureMarks,
  element,
  explain,
  hexOf,
  logVerifier,
  mark,
  showError,
  witnessPolicy,
} from "./common.js";

/** How many of the newest checkpoints the history shows. */
const HISTORY_ROWS = 20;

/** The verifier key and the signed checkpoints, checked in order. */
const state = { verifier: null, latest: null, witnessed: null };

/** The witness policy: who must cosign, and how many. */
async function showWitnesses() {
  const { quorum, witnesses } = await witnessPolicy();
  const table = $("witness-table");
  table.tBodies[0].replaceChildren();
  table.hidden = !witnesses.length;
  $("latest-witnessed-fact").hidden = !witnesses.length;
  if (!witnesses.length) {
    $("witness-policy").textContent =
      "This log runs without a witness policy: no witness is asked to cosign its checkpoints.";
    return;
  }
  $("witness-policy").textContent =
    `A checkpoint is witnessed once ${quorum} of these ${witnesses.length} witnesses have cosigned it. ` +
    "The keys are as the server states them: compare them with the keys the witnesses publish.";
  for (const { name, verifierKey } of witnesses) {
    const row = table.tBodies[0].insertRow();
    row.insertCell().textContent = name;
    row.insertCell().append(element("code", verifierKey));
  }
}

async function loadLog() {
  clearError();
  state.latest = null;
  state.witnessed = null;
  await showWitnesses();
  const { key, verifier } = await logVerifier();
  $("verifier-key").textContent = key;
  state.verifier = verifier;
  const { checkpoints } = await api(`/v1/checkpoints?limit=${HISTORY_ROWS}`);
  const body = $("checkpoints").tBodies[0];
  body.replaceChildren();
  for (const { note } of checkpoints) {
    const row = body.insertRow();
    try {
      const checkpoint = await verify.verifyCheckpoint(note, state.verifier);
      state.latest ??= checkpoint;
      row.insertCell().textContent = checkpoint.size.toString();
      const root = row.insertCell();
      root.className = "hash";
      root.textContent = hexOf(checkpoint.root);
      root.title = root.textContent;
      row.insertCell().append(mark(true, "verified"));
      const { quorumMet, marks } = await cosignatureMarks(checkpoint);
      const cosigned = row.insertCell();
      if (marks.length) cosigned.append(...marks.flatMap((m) => [m, element("br")]).slice(0, -1));
      else cosigned.textContent = "none (no witness policy)";
      if (quorumMet) state.witnessed ??= checkpoint;
    } catch (error) {
      row.insertCell().textContent = "?";
      row.insertCell();
      row.insertCell().append(mark(false, explain(error)));
      row.insertCell();
    }
  }
  if (!state.latest) {
    $("latest").replaceChildren(mark(false, "no checkpoint verified"));
    return;
  }
  $("origin").textContent = state.latest.origin;
  $("size").textContent = state.latest.size.toString();
  $("latest").replaceChildren(
    mark(true, `size ${state.latest.size}, signature verified`),
  );
  const { witnesses } = await witnessPolicy();
  if (witnesses.length) {
    $("latest-witnessed").replaceChildren(
      state.witnessed
        ? mark(true, `size ${state.witnessed.size}, its cosignatures verified`)
        : mark(false, `none of the ${checkpoints.length} newest checkpoints has its quorum of cosignatures`),
    );
  }
  $("newer-size").value ||= state.latest.size.toString();
  const oldest = checkpoints.at(-1);
  if (oldest) $("older-size").value ||= String(oldest.size);
}

async function verifyEvent(seq) {
  if (!state.latest) throw new Error("no verified checkpoint to check against");
  const page = await api(`/v1/events?from=${seq}&limit=1`);
  const event = page.events[0];
  if (!event || String(event.seq) !== seq) {
    throw new ApiError(404, `no event ${seq} in the log`);
  }
  const size = state.latest.size.toString();
  const proof = await api(`/v1/proofs/inclusion?seq=${seq}&size=${size}`);
  const hash = await verify.verifyInclusion(
    verify.base64ToBytes(event.leaf),
    BigInt(seq),
    state.latest,
    proof.proof.map(verify.hexToBytes),
  );
  if (hexOf(hash) !== event.leaf_hash) {
    throw new verify.VerificationError(
      "the server's leaf hash is not the hash of the event's bytes",
    );
  }
  return { event, hash };
}

async function verifyConsistency(older, newer) {
  const [first, second] = await Promise.all(
    [older, newer].map((size) => api(`/v1/checkpoint?size=${size}`, { text: true })),
  );
  const firstCheckpoint = await verify.verifyCheckpoint(first, state.verifier);
  const secondCheckpoint = await verify.verifyCheckpoint(second, state.verifier);
  const proof = await api(`/v1/proofs/consistency?from=${older}&to=${newer}`);
  await verify.verifyConsistency(
    firstCheckpoint.size,
    secondCheckpoint.size,
    firstCheckpoint.root,
    secondCheckpoint.root,
    proof.proof.map(verify.hexToBytes),
  );
}

function bindForms() {
  bindKeyForm(loadLog);
  $("event-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = $("event-result");
    const seq = $("event-seq").value.trim();
    out.replaceChildren("Verifying…");
    try {
      const { event, hash } = await verifyEvent(seq);
      out.replaceChildren(
        mark(true, `event ${seq} verified`),
        ` — ${event.type} on stream ${event.stream}, leaf hash `,
        Object.assign(document.createElement("code"), { textContent: hexOf(hash) }),
        `, included in the checkpoint of size ${state.latest.size}.`,
      );
    } catch (error) {
      out.replaceChildren(mark(false, explain(error)));
    }
  });
  $("consistency-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = $("consistency-result");
    const older = $("older-size").value.trim();
    const newer = $("newer-size").value.trim();
    out.replaceChildren("Verifying…");
    try {
      await verifyConsistency(older, newer);
      out.replaceChildren(
        mark(true, `consistent: the tree of ${newer} extends the tree of ${older}`),
      );
    } catch (error) {
      out.replaceChildren(mark(false, explain(error)));
    }
  });
}

bindForms();
loadLog().catch(showError);
