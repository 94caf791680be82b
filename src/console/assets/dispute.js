// The Dispute page: an uploaded audio file traced to its derivative
// (POST /v1/lineage), with what it was made from, who was paid, and every
// cited event proven in this browser (verify.js).

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
  logVerifier,
  mark,
  showError,
} from "./common.js";
import { drawSpectrogram } from "./spectrogram.js";

const MATCHED_BY = {
  credentials: "its Content Credentials (C2PA manifest, verified by the server)",
  "file-hash": "file hash (the exact bytes)",
  "pcm-hash": "PCM hash (the same audio in another container)",
  fingerprint: "acoustic fingerprint",
  "derivative-id": "derivative id",
};

function row(table, cells) {
  const tr = table.tBodies[0].insertRow();
  for (const cell of cells) {
    const td = tr.insertCell();
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell ?? "";
  }
  return tr;
}

function fact(list, term, value) {
  list.append(element("dt", term));
  const dd = element("dd");
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value ?? "";
  list.append(dd);
}

function code(text) {
  return element("code", text);
}

function describeMatch(answer) {
  const how = MATCHED_BY[answer.matched_by] ?? answer.matched_by;
  const m = answer.match ?? {};
  if (answer.matched_by === "fingerprint") {
    const percent = (m.score_bp / 100).toFixed(2);
    return `${how}: score ${percent}%, ${m.duration_ms / 1000} s of the upload from ${m.query_start_ms / 1000} s matching the derivative from ${m.derivative_start_ms / 1000} s`;
  }
  return how;
}

function showDerivative(answer) {
  const list = $("derivative");
  list.replaceChildren();
  const d = answer.derivative;
  const published = answer.generation_steps.find((e) => e.type === "generation.derivative-published");
  fact(list, "Derivative", code(d.derivative));
  fact(list, "Requested by", d.requested_by);
  fact(list, "Published", published ? `${published.time} (seq ${published.seq})` : `seq ${answer.derivative_seq}`);
  fact(list, "Recipe", `${d.recipe.kind} of ${d.recording}`);
  fact(list, "Matched by", describeMatch(answer));
  if (answer.credentials) {
    fact(
      list,
      "Content Credentials",
      answer.credentials.valid
        ? mark(true, `valid, signed by ${answer.credentials.verification?.signer ?? "?"}`)
        : mark(false, `present but invalid: ${answer.credentials.error ?? "a check failed"}`),
    );
  }
  if (answer.also_matched.length) {
    fact(list, "Also matches", answer.also_matched.join(", "));
  }
}

function showInputs(answer) {
  const table = $("inputs");
  table.tBodies[0].replaceChildren();
  const requested = answer.generation_steps.find((e) => e.type === "generation.requested");
  for (const [isrc, recording] of Object.entries(answer.recordings)) {
    const title = recording.data.title ? `“${recording.data.title}”` : "";
    row(table, ["Recording", isrc, `${title} catalog seq ${recording.seq}`.trim()]);
  }
  for (const [stem, hash] of Object.entries(requested?.data.stems ?? {})) {
    row(table, [`Stem: ${stem}`, code(hash), `of ${answer.derivative.recording}`]);
  }
  for (const [id, model] of Object.entries(answer.voice_models)) {
    const consent = model.data.consent ?? {};
    row(table, [
      "Voice model",
      id,
      `artist ${model.data.artist}; consent ${consent.reference ?? "none recorded"}${consent.granted === false ? " (not granted)" : ""}`,
    ]);
  }
  for (const [id, model] of Object.entries(answer.models ?? {})) {
    row(table, [
      "Network",
      id,
      `${model.data.licence}, ${model.data.authors}; ${model.data.source_package} ${model.data.source_version}; file ${model.data.artifact}; registered at seq ${model.seq}`,
    ]);
  }
}

function showSteps(answer) {
  const table = $("steps");
  table.tBodies[0].replaceChildren();
  for (const event of answer.generation_steps.filter((e) => e.type === "generation.step")) {
    const step = event.data;
    row(table, [
      String(event.seq),
      `${step.step}. ${step.op}`,
      code(JSON.stringify(step.params)),
      step.adapter ? `${step.backend} (${step.adapter.name})` : step.backend,
      `${step.duration_ms} ms`,
    ]);
  }
}

function showEarnings(answer) {
  const table = $("earnings");
  table.tBodies[0].replaceChildren();
  for (const revenue of answer.revenue) {
    for (const party of revenue.parties) {
      const tr = row(table, [
        `${party.name} (${party.party})`,
        revenue.currency,
        party.amount,
        Object.entries(party.components).map(([k, v]) => `${k}: ${v}`).join("; "),
      ]);
      tr.cells[2].className = "number";
    }
  }
  $("earnings-scope").textContent = answer.revenue.length
    ? `As of seq ${answer.as_of}, as far as this key may see.`
    : `Nothing earned as of seq ${answer.as_of}, as far as this key may see.`;
}

/** Checks the checkpoint's signature and every cited event's proof. */
async function verifyCited(answer) {
  const list = $("verified");
  list.replaceChildren(element("li", "Verifying…"));
  const items = [];
  let checkpoint;
  try {
    const { verifier } = await logVerifier();
    checkpoint = await verify.verifyCheckpoint(answer.checkpoint.note, verifier);
    if (checkpoint.size !== BigInt(answer.checkpoint.size)) {
      throw new verify.VerificationError("the signed checkpoint is not the size the answer cites");
    }
    items.push(mark(true, `checkpoint of size ${checkpoint.size}: signed by ${verifier.name}`));
    items.push(...(await cosignatureMarks(checkpoint)).marks);
  } catch (error) {
    list.replaceChildren(element("li", undefined));
    list.firstChild.append(mark(false, `checkpoint: ${explain(error)}`));
    return;
  }
  const encoder = new TextEncoder();
  for (const cited of answer.cited) {
    try {
      const hash = await verify.verifyInclusion(
        encoder.encode(cited.leaf),
        BigInt(cited.seq),
        checkpoint,
        cited.proof.proof.map(verify.hexToBytes),
      );
      if (verify.bytesToHex(hash) !== cited.proof.leaf_hash) {
        throw new verify.VerificationError("the leaf hash sent is not the hash of the event's bytes");
      }
      items.push(mark(true, `seq ${cited.seq} ${cited.type}: included`));
    } catch (error) {
      items.push(mark(false, `seq ${cited.seq} ${cited.type}: ${explain(error)}`));
    }
  }
  list.replaceChildren(...items.map((item) => {
    const li = element("li");
    li.append(item);
    return li;
  }));
}

/**
 * Marks the moment the answer is on the page, in User Timing, so that a
 * benchmark can time it against the upload's Resource Timing entry.
 */
function answered() {
  performance.mark(ANSWER_MARK);
}

const ANSWER_MARK = "ledgerline:lineage-answered";

async function trace(file) {
  performance.clearMarks(ANSWER_MARK);
  clearError();
  const status = $("upload-status");
  $("answer").hidden = true;
  status.textContent = `Tracing ${file.name}…`;
  // Read whole first: Chromium sends an ArrayBuffer several times faster
  // than it streams a File from disk.
  const bytes = await file.arrayBuffer();
  // The spectrogram is drawn once the answer is on the page: decoding and
  // transforming minutes of audio would hold the page (and a core the
  // server needs) while the answer is on its way.
  const drawn = () =>
    drawSpectrogram($("spectrogram"), bytes, file.name)
      .then(() => {
        $("spectrogram-section").hidden = false;
      })
      .catch(() => {
        $("spectrogram-section").hidden = true;
      });
  let answer;
  try {
    answer = await api("/v1/lineage", {
      method: "POST",
      body: bytes,
      contentType: file.type || "application/octet-stream",
    });
  } catch (error) {
    // The log knows nothing of this audio: an answer, not a failure.
    const unknown = error instanceof ApiError && error.status === 404;
    status.replaceChildren(mark(false, unknown ? `No lineage. ${error.message}` : explain(error)));
    answered();
    await drawn();
    return;
  }
  if (!answer.found) {
    const why = answer.credentials && answer.credentials.valid === false
      ? ` Its Content Credentials did not verify: ${answer.credentials.error ?? "a check failed"}.`
      : "";
    status.replaceChildren(mark(false, `No lineage: ${answer.message}.${why}`));
    answered();
    await drawn();
    return;
  }
  status.replaceChildren(mark(true, `${file.name} is derivative ${answer.derivative.derivative}`));
  showDerivative(answer);
  showInputs(answer);
  showSteps(answer);
  showEarnings(answer);
  $("answer").hidden = false;
  answered();
  await Promise.all([verifyCited(answer), drawn()]);
}

function bindUpload() {
  const input = $("audio-file");
  input.addEventListener("change", () => {
    if (input.files[0]) trace(input.files[0]).catch(showError);
  });
  const zone = $("upload-form");
  zone.addEventListener("submit", (e) => e.preventDefault());
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    const file = e.dataTransfer.files[0];
    if (file) trace(file).catch(showError);
  });
}

bindKeyForm(() => {
  const file = $("audio-file").files[0];
  return file ? trace(file) : undefined;
});
bindUpload();
