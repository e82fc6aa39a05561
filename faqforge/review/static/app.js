// faqforge review: the pairs, their decisions, your own pairs and the bot. Plain DOM, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const REASONS = ["wrong", "not in the documents", "unclear question", "duplicate", "personal data", "off topic"];
const view = { page: 1, size: 50, rows: [], total: 0, current: null, detail: null };

function say(text, kind) {
  const status = $("status");
  status.textContent = text || "";
  status.className = kind || "";
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function stateBadges(row) {
  const out = [];
  if (row.human) out.push(el("span", { class: "badge person" }, "by a person"));
  if (row.dropped_by) out.push(el("span", { class: "badge dropped", title: [row.drop_meaning, row.drop_why].filter(Boolean).join(": ") },
                                  `dropped by ${row.dropped_by}: ${row.drop_reason}`));
  const review = row.review;
  if (review && review.status) out.push(el("span", { class: `badge ${review.status}` },
                                           review.status + (review.reason ? `: ${review.reason}` : "")));
  if (review && (review.question || review.answer) && !row.human) out.push(el("span", { class: "badge" }, "edited"));
  if (review && review.rescued) out.push(el("span", { class: "badge approved" }, "rescued"));
  return out;
}

function filters() {
  const params = new URLSearchParams();
  for (const id of ["q", "doc", "source", "verdict", "min_score", "max_score", "state", "reason", "reviewed"]) {
    if ($(id).value !== "") params.set(id, $(id).value);
  }
  params.set("page", view.page);
  params.set("size", view.size);
  return params;
}

async function load(keepCurrent) {
  try {
    const data = await api(`/api/pairs?${filters()}`);
    view.rows = data.rows;
    view.total = data.total;
    const last = Math.max(1, Math.ceil(data.total / view.size));
    $("count").textContent = `${data.total} pairs, page ${view.page} of ${last} (${data.ms} ms)`;
    $("rows").replaceChildren(...data.rows.map((row, i) => el("tr", {
      "data-id": row.id, class: rowClass(row), onclick: () => select(i) },
      el("td", {}, (row.review && row.review.question) || row.question),
      el("td", {}, (row.doc || "").replace("data/docs/", "")),
      el("td", {}, row.verdict ? `${row.verdict} ${row.score ?? ""}` : "-"),
      el("td", {}, ...stateBadges(row)))));
    const again = keepCurrent && view.current !== null ? view.rows.findIndex((r) => r.id === keepCurrent) : -1;
    if (again >= 0) select(again);
  } catch (error) { say(error.message, "error"); }
}

function rowClass(row) {
  return [row.review && row.review.status === "rejected" ? "rejected" : "",
          view.detail && view.detail.id === row.id ? "current" : ""].join(" ").trim();
}

async function select(i) {
  if (i < 0 || i >= view.rows.length) return;
  view.current = i;
  for (const tr of $("rows").children) tr.classList.toggle("current", tr.dataset.id === view.rows[i].id);
  try { render(await api(`/api/pairs/${encodeURIComponent(view.rows[i].id)}`)); }
  catch (error) { say(error.message, "error"); }
}

function highlighted(text, spans) {
  const out = [];
  let at = 0;
  for (const [start, end] of spans) {
    out.push(text.slice(at, start), el("mark", {}, text.slice(start, end)));
    at = end;
  }
  out.push(text.slice(at));
  return out;
}

function render(pair) {
  view.detail = pair;
  const review = pair.review || {};
  const where = [pair.doc, pair.section, pair.pages ? `pages ${pair.pages}` : null].filter(Boolean).join(" / ");
  const actions = el("div", { class: "actions" });
  if (pair.dropped_by && !pair.human) {
    actions.append(el("button", { id: "rescue", onclick: () => decide("rescue"), disabled: !pair.rescuable,
                                  title: pair.rescuable ? "bring it back into training (s)" : "cannot train" },
                      "Rescue (s)"));
  } else {
    actions.append(el("button", { id: "approve", onclick: () => decide("approve") }, "Approve (a)"));
  }
  const reason = el("select", { id: "reject-reason" }, ...REASONS.map((r) => el("option", { value: r }, r)),
                    el("option", { value: "other" }, "other (write it)"));
  actions.append(reason, el("button", { id: "reject", onclick: () => reject() }, "Reject (r)"),
                 el("button", { id: "edit", onclick: () => edit() }, "Edit (e)"),
                 el("button", { id: "next", onclick: () => step(1) }, "Next (j)"));
  $("detail").replaceChildren(...[
    el("h2", { id: "detail-question" }, review.question || pair.question),
    el("p", { id: "detail-answer" }, review.answer || pair.answer),
    review.question || review.answer ? el("p", { class: "hint" }, `original: ${pair.question} / ${pair.answer}`) : null,
    el("p", {}, ...stateBadges(pair)),
    actions,
    el("div", { id: "editor" }),
    el("p", {}, el("b", {}, "Source: "), where || "written by a person"),
    pair.chunk ? el("div", { class: "chunk", id: "chunk" }, ...highlighted(pair.chunk, pair.highlight)) : null,
    el("p", {}, el("b", {}, "Judge: "), pair.verdict ? `${pair.verdict}, score ${pair.score ?? "-"}` : "no verdict",
       pair.judge_reason ? ` (${pair.judge_reason})` : "",
       el("br"), el("b", {}, "Grounding: "), pair.grounding ?? "-"),
    pair.duplicates_of_it.length ? el("div", {}, el("b", {}, "Dedup dropped in its favour:"),
      el("ul", {}, ...pair.duplicates_of_it.map((d) => el("li", {}, `${d.question} (${d.id})`)))) : null,
    pair.duplicate_of ? el("p", {}, el("b", {}, "Duplicate of: "), pair.duplicate_of) : null,
    pair.history.length ? el("details", {}, el("summary", {}, `${pair.history.length} decisions`),
      el("ul", {}, ...pair.history.map((d) => el("li", {}, `${d.time} ${d.reviewer}: ${d.action}`
                                                  + (d.reason ? ` (${d.reason})` : ""))))) : null,
    el("p", { class: "hint" }, pair.id)].filter((node) => node !== null));  // replaceChildren would print "null"
}

async function decide(action, extra) {
  if (!view.detail) return;
  try {
    await api("/api/decisions", { pair_id: view.detail.id, action, ...(extra || {}) });
    say(`${action}: ${view.detail.id}`, "ok");
    const id = view.detail.id;
    await load(id);
  } catch (error) { say(error.message, "error"); }
}

function reject() {
  let reason = $("reject-reason").value;
  if (reason === "other") reason = window.prompt("Why is it rejected?") || "";
  if (reason.trim()) decide("reject", { reason: reason.trim() });
}

function edit() {
  if (!view.detail) return;
  const review = view.detail.review || {};
  const question = el("textarea", { id: "edit-question", rows: 2 });
  question.value = review.question || view.detail.question;
  const answer = el("textarea", { id: "edit-answer", rows: 4 });
  answer.value = review.answer || view.detail.answer;
  const save = el("button", { id: "edit-save", onclick: () => {
    const changes = {};
    if (question.value.trim() !== (review.question || view.detail.question)) changes.question = question.value.trim();
    if (answer.value.trim() !== (review.answer || view.detail.answer)) changes.answer = answer.value.trim();
    if (Object.keys(changes).length) decide("edit", changes); else say("nothing changed");
  } }, "Save the edit");
  $("editor").replaceChildren(question, answer, save);
  question.focus();
}

function step(delta) {
  const next = (view.current ?? -1) + delta;
  if (next >= 0 && next < view.rows.length) select(next);
  else if (delta > 0 && view.page * view.size < view.total) { view.page += 1; load().then(() => select(0)); }
}

document.addEventListener("keydown", (event) => {
  if (["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName) || event.ctrlKey || event.metaKey) return;
  const keys = { j: () => step(1), n: () => step(1), k: () => step(-1), a: () => decide("approve"),
                 r: () => reject(), e: () => edit(), s: () => decide("rescue"), "/": () => $("q").focus() };
  if (keys[event.key] && !$("pairs").classList.contains("hidden")) { event.preventDefault(); keys[event.key](); }
});

let typing = null;
$("filters").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => { view.page = 1; load(); }, 200);
});
$("filters").addEventListener("submit", (event) => event.preventDefault());
$("prev-page").addEventListener("click", () => { if (view.page > 1) { view.page -= 1; load(); } });
$("next-page").addEventListener("click", () => {
  if (view.page * view.size < view.total) { view.page += 1; load(); }
});

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tab")) other.classList.toggle("active", other === tab);
    for (const panel of document.querySelectorAll(".panel")) panel.classList.toggle("hidden", panel.id !== tab.dataset.tab);
  });
}

$("add-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const row = await api("/api/pairs", { question: $("add-question").value, answer: $("add-answer").value,
                                          doc: $("add-doc").value || null });
    say(`added ${row.id}`, "ok");
    $("add-question").value = "";
    $("add-answer").value = "";
    load();
  } catch (error) { say(error.message, "error"); }
});

$("import-submit").addEventListener("click", async () => {
  const file = $("import-file").files[0];
  if (!file) { say("choose a file first", "error"); return; }
  try {
    const text = await file.text();
    const format = file.name.toLowerCase().endsWith(".csv") ? "csv" : "jsonl";
    const result = await api("/api/import", { format, text });
    $("import-result").textContent = `${result.added} added` + result.refused.map(
      (r) => `\nrow ${r.row}: ${r.why}`).join("");
    say(`imported ${result.added} pairs`, "ok");
    load();
  } catch (error) { say(error.message, "error"); }
});

const conversation = [];
$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("chat-input").value.trim();
  if (!question) return;
  $("chat-input").value = "";
  conversation.push({ role: "user", content: question });
  const answer = el("div", { class: "answer" });
  const sources = el("div", { class: "sources" });
  $("chat-log").append(el("div", { class: "you" }, question), answer, sources);
  try {
    const response = await fetch("/api/chat", { method: "POST", headers: { "Content-Type": "application/json" },
                                                body: JSON.stringify({ messages: conversation }) });
    if (!response.ok) throw new Error((await response.json()).error || response.statusText);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n")) >= 0) {
        const event = JSON.parse(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 1);
        if (event.delta) answer.textContent += event.delta;
        if (event.done) sources.textContent = event.sources.length
          ? "Sources: " + event.sources.map((s) => `[${s.n}] ${s.source}`).join("; ") : "";
      }
    }
    conversation.push({ role: "assistant", content: answer.textContent });
  } catch (error) { say(error.message, "error"); }
});

(async () => {
  try {
    const facets = await api("/api/facets");
    $("who").textContent = `reviewing as ${facets.reviewer}`;
    for (const [doc, n] of facets.docs) {
      $("doc").append(el("option", { value: doc }, `${doc.replace("data/docs/", "")} (${n})`));
      $("add-doc").append(el("option", { value: doc }, doc.replace("data/docs/", "")));
    }
    for (const [source, n] of facets.sources) $("source").append(el("option", { value: source }, `${source} (${n})`));
    for (const [code, n, meaning] of facets.reasons) {
      $("reason").append(el("option", { value: code, title: meaning || "" }, `${code} (${n})`));
    }
  } catch (error) { say(error.message, "error"); }
  load();
})();
