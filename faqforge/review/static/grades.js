// faqforge review, the grades view: each eval question with its reference, the passages and every
// answer of the last evaluation, shuffled and unnamed; right / partly right / wrong go to
// data/eval/grades.jsonl. Uses $, api, el and say from app.js.
"use strict";

const grading = { questions: [], shown: [], current: null, focus: 0 };
const GRADE_NAMES = { right: "right", partly: "partly right", wrong: "wrong" };

async function loadGrades(keepIndex) {
  try {
    const data = await api("/api/eval");
    grading.questions = data.questions;
    const onlyUngraded = $("grade-show").value === "ungraded";
    grading.shown = data.questions.filter((q) => !onlyUngraded || q.answers.some((a) => !a.grade)
                                                 || q.index === keepIndex);
    $("grade-count").textContent = `${data.graded} of ${data.answers} answers graded, as ${data.grader}`;
    $("grade-rows").replaceChildren(...grading.shown.map((q, i) => el("tr", {
      "data-index": q.index, onclick: () => showQuestion(i) },
      el("td", {}, String(q.index)), el("td", {}, q.question),
      el("td", {}, `${q.answers.filter((a) => a.grade).length} / ${q.answers.length}`))));
    const again = grading.shown.findIndex((q) => q.index === keepIndex);
    if (again >= 0) showQuestion(again, grading.focus);
    else if (grading.shown.length) showQuestion(0);
    else $("grade-detail").replaceChildren(el("p", { class: "hint" }, "Every answer is graded."));
  } catch (error) { say(error.message, "error"); }
}

function showQuestion(i, focus) {
  if (i < 0 || i >= grading.shown.length) return;
  const q = grading.shown[i];
  grading.current = i;
  grading.focus = Math.min(focus ?? q.answers.findIndex((a) => !a.grade), q.answers.length - 1);
  if (grading.focus < 0) grading.focus = 0;
  for (const tr of $("grade-rows").children) tr.classList.toggle("current", Number(tr.dataset.index) === q.index);
  const letters = "ABCDEFGHIJKLMNOP";
  $("grade-detail").replaceChildren(
    el("h2", { id: "grade-question" }, q.question),
    el("p", {}, el("b", {}, "Reference: "), el("span", { id: "grade-reference" }, q.reference),
       q.answerable ? "" : el("span", { class: "badge" }, "the documents do not answer it")),
    ...q.answers.map((a, n) => el("div", {
      class: `graded-answer ${n === grading.focus ? "focus" : ""} ${a.grade || "ungraded"}`, "data-key": a.key,
      onclick: () => focusAnswer(n) },
      el("p", {}, el("b", {}, `${letters[n] || n + 1}. `), el("span", { class: "answer-text" }, a.text)),
      el("div", { class: "actions" },
         ...Object.entries(GRADE_NAMES).map(([grade, label]) => el("button", {
           class: a.grade === grade ? "chosen" : null, "data-grade": grade,
           onclick: (event) => { event.stopPropagation(); gradeAnswer(n, grade); } },
           `${label} (${{ right: "a", partly: "p", wrong: "r" }[grade]})`)),
         el("span", { class: "hint" }, a.grade ? `graded ${GRADE_NAMES[a.grade]} by ${a.grader}` : "ungraded")))),
    el("details", { open: true }, el("summary", {}, `${q.passages.length} passages shown to the bot`),
       ...q.passages.map((p, n) => el("div", { class: "chunk" }, el("b", {}, `[${n + 1}] ${p.source}`), el("br"),
                                      p.text))));
}

function focusAnswer(n) {
  const q = grading.shown[grading.current];
  if (!q || n < 0 || n >= q.answers.length) return;
  grading.focus = n;
  const blocks = document.querySelectorAll("#grade-detail .graded-answer");
  blocks.forEach((block, k) => block.classList.toggle("focus", k === n));
}

async function gradeAnswer(n, grade) {
  const q = grading.shown[grading.current];
  if (!q) return;
  const answer = q.answers[n];
  try {
    await api("/api/grades", { question: q.question, answer: answer.text, grade });
    say(`graded ${GRADE_NAMES[grade]}: question ${q.index}, answer ${"ABCDEFGHIJKLMNOP"[n] || n + 1}`, "ok");
    grading.focus = Math.min(n + 1, q.answers.length - 1);
    await loadGrades(q.index);
  } catch (error) { say(error.message, "error"); }
}

document.addEventListener("keydown", (event) => {
  if ($("grades").classList.contains("hidden")) return;
  if (["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName) || event.ctrlKey || event.metaKey) return;
  const keys = { a: () => gradeAnswer(grading.focus, "right"), p: () => gradeAnswer(grading.focus, "partly"),
                 r: () => gradeAnswer(grading.focus, "wrong"), j: () => focusAnswer(grading.focus + 1),
                 k: () => focusAnswer(grading.focus - 1), n: () => showQuestion((grading.current ?? -1) + 1) };
  if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
});

$("grade-show").addEventListener("change", () => loadGrades());
$("tab-grades").addEventListener("click", () => loadGrades());
