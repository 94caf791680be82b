// The Statements page: a period's royalty statements (GET
// /v1/statements/{period}), the checkpoint each cites verified in this
// browser, a CSV download, a chart of one party over the periods, and a
// reconciliation of a label's CSV (POST /v1/reconciliations).

import * as verify from "./verify.js";
import {
  $,
  api,
  bindKeyForm,
  clearError,
  element,
  explain,
  logVerifier,
  mark,
  showError,
} from "./common.js";

/** How many periods the chart shows, ending at the one chosen. */
const CHART_PERIODS = 6;

const STATUS_WORDS = {
  matched: "matched",
  mismatched: "mismatched",
  "missing-here": "missing here (only in the label's)",
  "missing-there": "missing there (only in ours)",
};

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

function chosen() {
  return { period: $("period").value, currency: $("currency").value.trim().toUpperCase() };
}

/** Checks that `cited` (size, root_hash) is a root the log signed. */
async function verifyCited(cited) {
  const { verifier } = await logVerifier();
  const note = await api(`/v1/checkpoint?size=${cited.size}`, { text: true });
  const checkpoint = await verify.verifyCheckpoint(note, verifier);
  if (verify.bytesToHex(checkpoint.root) !== cited.root_hash) {
    throw new verify.VerificationError("the cited root is not the root the log signed at that size");
  }
}

async function downloadCsv(period, currency) {
  const csv = await api(`/v1/statements/${period}${query({ currency })}`, { text: true, accept: "text/csv" });
  const url = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  const link = Object.assign(document.createElement("a"), {
    href: url,
    download: `statement-${period}${currency ? `-${currency}` : ""}.csv`,
  });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function statementSection(statement) {
  const section = element("section", undefined, "statement");
  const id = `statement-${statement.currency}`;
  section.setAttribute("aria-labelledby", id);
  const heading = element("h2", `${statement.currency} statement for ${statement.period}`);
  heading.id = id;
  const cited = element("p");
  cited.append(
    `Computed from the first ${statement.checkpoint.size} events, root `,
    element("code", statement.checkpoint.root_hash),
    ": ",
  );
  const verdict = element("span", "checking the signature…");
  cited.append(verdict);
  verifyCited(statement.checkpoint)
    .then(() => verdict.replaceWith(mark(true, "signed by the log, verified in this browser")))
    .catch((error) => verdict.replaceWith(mark(false, explain(error))));
  const table = element("table", undefined, "statement-table");
  const head = table.createTHead().insertRow();
  for (const [title, number] of [["Party"], ["Name"], ["Amount", true], ["Exact", true]]) {
    const th = element("th", title, number ? "number" : undefined);
    th.scope = "col";
    head.append(th);
  }
  table.createTBody();
  for (const line of statement.lines) {
    const tr = table.tBodies[0].insertRow();
    for (const [value, number] of [[line.party], [line.name], [line.amount, true], [line.exact, true]]) {
      const td = tr.insertCell();
      td.textContent = value;
      if (number) td.className = "number";
    }
  }
  if (statement.total !== undefined) {
    const foot = table.createTFoot().insertRow();
    foot.append(element("th", "Total"), element("td"), element("td", statement.total, "number"), element("td"));
    foot.cells[0].scope = "row";
  }
  const scroll = element("div", undefined, "scroll");
  scroll.append(table);
  section.append(heading, cited, scroll);
  return section;
}

/** The `count` periods (YYYY-MM) ending at `period`, oldest first. */
function periodsEndingAt(period, count) {
  let [year, month] = period.split("-").map(Number);
  const periods = [];
  for (let i = 0; i < count; i++) {
    periods.unshift(`${year}-${String(month).padStart(2, "0")}`);
    month -= 1;
    if (month === 0) [year, month] = [year - 1, 12];
  }
  return periods;
}

async function drawChart() {
  const party = $("chart-party").value;
  const currency = $("chart-currency").value;
  const periods = periodsEndingAt($("period").value, CHART_PERIODS);
  const amounts = await Promise.all(
    periods.map(async (period) => {
      try {
        const { statements } = await api(`/v1/statements/${period}${query({ currency, party })}`);
        const line = statements[0]?.lines.find((l) => l.party === party);
        return line ? line.amount : "0";
      } catch (error) {
        if (error.status === 404) return "0";
        throw error;
      }
    }),
  );
  // Decimal strings as the API gives them label the bars; only the bars'
  // heights use floating point.
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  const make = (tag, attributes, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const [left, bottom, top, width, height] = [70, 230, 20, 630, 210];
  const highest = Math.max(...amounts.map(Number), 1);
  const bar = width / periods.length;
  const nodes = [
    make("line", { x1: left, y1: bottom, x2: left + width, y2: bottom, class: "axis" }),
    make("line", { x1: left, y1: top, x2: left, y2: bottom, class: "axis" }),
    make("text", { x: left - 8, y: top + 4, class: "tick end" }, amounts.find((a) => Number(a) === highest) ?? "1"),
    make("text", { x: left - 8, y: bottom, class: "tick end" }, "0"),
  ];
  periods.forEach((period, i) => {
    const h = ((height - top) * Number(amounts[i])) / highest;
    const x = left + i * bar + bar * 0.15;
    nodes.push(
      make("rect", { x, y: bottom - h, width: bar * 0.7, height: h, class: "bar" }),
      make("text", { x: x + bar * 0.35, y: bottom + 16, class: "tick middle" }, period),
      make("text", { x: x + bar * 0.35, y: bottom - h - 4, class: "tick middle" }, amounts[i]),
    );
  });
  svg.replaceChildren(...nodes);
  $("chart-caption").textContent = `${party}'s ${currency} amounts, ${periods[0]} to ${periods.at(-1)}: ${periods
    .map((p, i) => `${p} ${amounts[i]}`)
    .join(", ")}.`;
}

async function showStatements() {
  clearError();
  const { period, currency } = chosen();
  const status = $("statement-status");
  status.textContent = "Loading…";
  let statements;
  try {
    ({ statements } = await api(`/v1/statements/${period}${query({ currency })}`));
  } catch (error) {
    status.replaceChildren(mark(false, explain(error)));
    $("statements").replaceChildren();
    return;
  }
  const download = element("button", "Download CSV");
  download.type = "button";
  download.addEventListener("click", () => downloadCsv(period, currency).catch(showError));
  status.replaceChildren(
    statements.length ? `${statements.length} statement(s) for ${period}. ` : `No usage in ${period}. `,
    download,
  );
  $("statements").replaceChildren(...statements.map(statementSection));
  const parties = [...new Set(statements.flatMap((s) => s.lines.map((l) => l.party)))];
  $("chart-party").replaceChildren(...parties.map((p) => element("option", p)));
  $("chart-currency").replaceChildren(...statements.map((s) => element("option", s.currency)));
  $("chart-section").hidden = parties.length === 0;
  $("reconcile-section").hidden = false;
  if (parties.length) await drawChart();
}

async function reconcile(file) {
  const { period, currency } = chosen();
  const status = $("reconcile-status");
  const table = $("reconciliation");
  status.textContent = `Comparing ${file.name}…`;
  let report;
  try {
    report = await api(`/v1/reconciliations${query({ period, currency })}`, {
      method: "POST",
      body: await file.text(),
      contentType: "text/csv",
    });
  } catch (error) {
    status.replaceChildren(mark(false, explain(error)));
    table.hidden = true;
    return;
  }
  const c = report.counts;
  status.replaceChildren(
    mark(
      report.all_match,
      report.all_match
        ? `every line matches ours (checkpoint of size ${report.checkpoint.size})`
        : `${c.mismatched} mismatched, ${c.missing_here} missing here, ${c.missing_there} missing there, ${c.matched} matched`,
    ),
  );
  table.tBodies[0].replaceChildren();
  for (const line of [...report.parties, ...report.derivatives]) {
    const tr = table.tBodies[0].insertRow();
    tr.className = line.status === "matched" ? "matched" : "mismatched";
    const cells = [line.party, line.currency, line.derivative ?? "", line.ours ?? "", line.theirs ?? "", line.difference ?? ""];
    cells.forEach((value, i) => {
      const td = tr.insertCell();
      td.textContent = value;
      if (i >= 3) td.className = "number";
    });
    tr.insertCell().append(mark(line.status === "matched", STATUS_WORDS[line.status] ?? line.status));
  }
  table.hidden = false;
}

function bind() {
  $("statement-form").addEventListener("submit", (e) => {
    e.preventDefault();
    showStatements().catch(showError);
  });
  $("chart-form").addEventListener("submit", (e) => {
    e.preventDefault();
    drawChart().catch(showError);
  });
  $("reconcile-form").addEventListener("submit", (e) => e.preventDefault());
  $("reconcile-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) reconcile(file).catch(showError);
  });
}

bindKeyForm(() => ($("period").value ? showStatements() : undefined));
bind();
