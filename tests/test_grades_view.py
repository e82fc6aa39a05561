"""The review screen's grades view: over real HTTP on 127.0.0.1, and in Debian's headless
Chromium (grade, reload, a changed answer asks again)."""

import json
import urllib.request

import pytest

from faqforge.core.grades import read_grades
from faqforge.review.app import create_review_app
from faqforge.review.store import Store
from tests.support.http import call, running

PASSAGE = {"passage_id": "p1", "doc": "data/docs/getting-started.md", "section": "Your first run", "pages": None,
           "text": "To run the test suite instead: make test."}


def prediction(index, question, reference, answers, answerable=True):
    return {"index": index, "question": question, "reference": reference, "answerable": answerable,
            "answers": answers, "passages": [PASSAGE], "scores": {}}


def write_predictions(project, bot_answer="Run make test. [1]"):
    rows = [prediction(0, "How do I run the tests?", "Run make test.",
                       {"tuned_rag": bot_answer, "top_passage": "To run the test suite instead: make test. [1]",
                        "best_sentence": "To run the test suite instead: make test. [1]"}),
            prediction(1, "Is there a Docker image?", "The documents do not cover this.",
                       {"tuned_rag": "The documents do not answer this question.",
                        "top_passage": "faqforge ships with an embedded model. [1]"}, answerable=False)]
    path = project / "data/eval/predictions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))




def test_the_answers_come_unnamed_deduplicated_and_a_grade_is_kept_by_text(tmp_path):
    with running(create_review_app(Store(tmp_path, "ana"))) as url:
        url = url.removesuffix("/v1")
        status, error = call(url, "/api/eval")
        assert status == 409 and "run `dvc repro evaluate` first" in error["error"]
        write_predictions(tmp_path)
        status, data = call(url, "/api/eval")
        assert status == 200 and data["answers"] == 4 and data["graded"] == 0 and data["grader"] == "ana"
        first = data["questions"][0]
        assert [a["text"] for a in first["answers"]].count("To run the test suite instead: make test. [1]") == 1
        assert not any("arm" in a or "tuned_rag" in json.dumps(a) for a in first["answers"])   # unnamed
        assert first["passages"] == [{"source": "getting-started.md, Your first run", "text": PASSAGE["text"]}]
        status, saved = call(url, "/api/grades", {"question": first["question"], "answer": "Run make test. [1]",
                                                   "grade": "right"})
        assert status == 200 and saved["grader"] == "ana"
        assert call(url, "/api/grades", {"question": first["question"], "answer": "Run make test. [1]",
                                         "grade": "great"})[1]["error"].startswith("grade: grade 'great' is not one")
        status, error = call(url, "/api/grades", {"question": first["question"], "answer": "Something else.",
                                                  "grade": "wrong"})
        assert status == 409 and "not in the last evaluation" in error["error"]
        data = call(url, "/api/eval")[1]
        assert data["graded"] == 1
        assert [a["grade"] for a in data["questions"][0]["answers"] if a["text"] == "Run make test. [1]"] == ["right"]
        request = urllib.request.Request(url + "/api/grades", method="POST", headers={"Content-Type": "text/plain"},
                                         data=b'{"question": "How do I run the tests?", "grade": "wrong"}')
        with pytest.raises(urllib.error.HTTPError) as refused:     # what another site's form could send
            urllib.request.urlopen(request)
        assert refused.value.code == 409
    assert len(read_grades(tmp_path / "data/eval/grades.jsonl")) == 1




def test_grade_in_a_browser_reload_and_a_changed_answer_asks_again(tmp_path, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    write_predictions(tmp_path)

    def open_view(show="ungraded", expect="How do I run the tests?"):
        browser.get(url + "/")
        browser.find_element(By.ID, "tab-grades").click()
        Select(browser.find_element(By.ID, "grade-show")).select_by_value(show)
        wait.until(lambda d: d.find_element(By.ID, "grade-question").text == expect)

    def answers():
        return {b.find_element(By.CSS_SELECTOR, ".answer-text").text: b.get_attribute("class").split()
                for b in browser.find_elements(By.CSS_SELECTOR, "#grade-detail .graded-answer")}

    with running(create_review_app(Store(tmp_path, "grader-one"))) as url:
        url = url.removesuffix("/v1")
        open_view()
        assert set(answers()) == {"Run make test. [1]", "To run the test suite instead: make test. [1]"}
        assert "tuned" not in browser.find_element(By.ID, "grade-detail").text     # no arm names on the page
        block = next(b for b in browser.find_elements(By.CSS_SELECTOR, "#grade-detail .graded-answer")
                     if b.find_element(By.CSS_SELECTOR, ".answer-text").text == "Run make test. [1]")
        block.find_element(By.CSS_SELECTOR, "button[data-grade=right]").click()
        wait.until(lambda d: "graded right" in d.find_element(By.ID, "status").text)
        wait.until(lambda d: "right" in answers()["Run make test. [1]"])
        # the keyboard: focus the other answer, grade it partly right
        other = [i for i, text in enumerate(answers()) if text != "Run make test. [1]"][0]
        for _ in range(other):
            browser.find_element(By.TAG_NAME, "body").send_keys("j")
        browser.find_element(By.TAG_NAME, "body").send_keys("p")
        wait.until(lambda d: "partly" in answers()["To run the test suite instead: make test. [1]"])
        browser.save_screenshot(str(tmp_path / "grades.png"))

        open_view(expect="Is there a Docker image?")   # a reload: the first question is no longer left to grade
        open_view(show="")
        assert "right" in answers()["Run make test. [1]"]
        assert "partly" in answers()["To run the test suite instead: make test. [1]"]
        assert "2 of 4 answers graded" in browser.find_element(By.ID, "grade-count").text

        write_predictions(tmp_path, bot_answer="Use make test to run them. [1]")   # the next run answers anew
        open_view()
        assert "ungraded" in answers()["Use make test to run them. [1]"]
        assert "partly" in answers()["To run the test suite instead: make test. [1]"]   # unchanged: still graded
    grades = read_grades(tmp_path / "data/eval/grades.jsonl")
    assert sorted(g["grade"] for g in grades.values()) == ["partly", "right"]
    assert {g["grader"] for g in grades.values()} == {"grader-one"}
    assert (tmp_path / "grades.png").stat().st_size > 10_000
