// The Generations page: a request (POST /v1/generations), its progress as
// the log records it (the job's Server-Sent Events, read with fetch so the
// API key can go in a header), and the output as distributed, played and
// drawn in the browser.

import {
  $,
  api,
  authHeaders,
  bindKeyForm,
  clearError,
  element,
  explain,
  mark,
  replyError,
  showError,
} from "./common.js";
import { drawSpectrogram } from "./spectrogram.js";
import { base64ToBytes } from "./verify.js";

function request() {
  const recipe = { kind: $("kind").value };
  const tempo = Number($("tempo-rate").value || 1);
  const semitones = Number($("semitones").value || 0);
  if (tempo !== 1) recipe.tempo_rate = tempo;
  if (semitones !== 0) recipe.semitones = semitones;
  const voice = $("voice-model").value.trim();
  if (voice) recipe.voice_model = voice;
  return {
    recording: $("recording").value.trim(),
    requested_by: $("requested-by").value.trim(),
    territory: $("territory").value.trim().toUpperCase(),
    recipe,
  };
}

/** The payload of a logged event: its leaf is the RFC 8785 envelope. */
function payload(event) {
  try {
    return JSON.parse(new TextDecoder().decode(base64ToBytes(event.leaf))).data ?? {};
  } catch {
    return {};
  }
}

/** What one logged event of the job says, in a line. */
function describe(type, event) {
  const data = payload(event);
  switch (type) {
    case "generation.requested":
      return `seq ${event.seq}: requested (${data.recipe?.kind ?? "?"} of ${data.recording})`;
    case "generation.step":
      return `seq ${event.seq}: step ${data.step} ${data.op} on ${data.backend}, ${data.duration_ms} ms`;
    case "generation.derivative-published":
      return `seq ${event.seq}: published derivative ${data.derivative}`;
    case "generation.credentials-issued":
      return `seq ${event.seq}: Content Credentials issued`;
    case "generation.rejected":
      return `seq ${event.seq}: refused: ${data.reason}${data.value ? ` (${data.value})` : ""}`;
    default:
      return `seq ${event.seq ?? "?"}: ${type}`;
  }
}

/** Reads the job's event stream, calling `onEvent(type, data)` for each. */
async function follow(job, onEvent) {
  const headers = { ...authHeaders(), Accept: "text/event-stream" };
  const reply = await fetch(`/v1/generations/${job}/events`, { headers });
  if (!reply.ok) throw await replyError(reply);
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(type, JSON.parse(data.join("\n")));
    }
  }
}

async function showOutput(job) {
  const status = await api(`/v1/generations/${job}`);
  const result = status.result;
  const facts = $("output-facts");
  facts.replaceChildren();
  for (const [term, value] of [
    ["Derivative", result.derivative],
    ["Output (raw)", result.output],
    ["File as distributed", result.file],
  ]) {
    facts.append(element("dt", term), element("dd", value));
  }
  const reply = await fetch(`/v1/artifacts/${result.file}`, { headers: authHeaders() });
  if (!reply.ok) throw await replyError(reply);
  const bytes = await reply.arrayBuffer();
  $("player").src = URL.createObjectURL(new Blob([bytes], { type: "audio/wav" }));
  $("output-section").hidden = false;
  await drawSpectrogram($("output-spectrogram"), bytes, `Derivative ${result.derivative}`);
}

async function generate() {
  clearError();
  const progress = $("progress");
  const status = $("job-status");
  progress.replaceChildren();
  $("output-section").hidden = true;
  $("progress-section").hidden = false;
  status.textContent = "Submitting…";
  let job;
  try {
    ({ job } = await api("/v1/generations", {
      method: "POST",
      body: JSON.stringify(request()),
      contentType: "application/json",
    }));
  } catch (error) {
    status.replaceChildren(mark(false, explain(error)));
    return;
  }
  status.textContent = `Job ${job} queued; following its events…`;
  let ending = null;
  await follow(job, (type, event) => {
    if (type === "job-failed") {
      ending = { ok: false, text: `the job failed: ${event.error}` };
      return;
    }
    const ok = type !== "generation.rejected" && type !== "generation.abandoned";
    const item = element("li");
    item.append(mark(ok, describe(type, event)));
    progress.append(item);
    if (type === "generation.credentials-issued") ending = { ok: true, text: `job ${job} done` };
    if (!ok) ending = { ok: false, text: `job ${job} ${type === "generation.rejected" ? "refused" : "abandoned"}` };
  });
  if (!ending) ending = { ok: false, text: `job ${job}: the event stream ended early; reload its status` };
  status.replaceChildren(mark(ending.ok, ending.text));
  if (ending.ok) await showOutput(job);
}

bindKeyForm(() => undefined);
$("generation-form").addEventListener("submit", (e) => {
  e.preventDefault();
  generate().catch(showError);
});
