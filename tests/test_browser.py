"""The real exam page in headless Chromium: sign in, answer, survive a blip, reload, finish.

Uses Debian's chromium (installed by the test setup when missing) through Playwright's
Python package; no browser is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from testing_center.attempts.models import Attempt
from testing_center.extensions import db

from .conftest import PASSWORD

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def ensure_chromium() -> str:
    """Return Chromium's path, installing Debian's package first when it is missing."""
    apt_get = shutil.which("apt-get")
    if not os.path.exists(CHROMIUM) and apt_get and os.geteuid() == 0:
        subprocess.run(
            [apt_get, "install", "-y", "-q", "chromium"],
            check=False,
            capture_output=True,
            timeout=900,
        )
    if not os.path.exists(CHROMIUM):
        message = "Debian's chromium is not installed and cannot be installed here"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the browser tests, never pass without them
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def app_config():
    return {"WTF_CSRF_ENABLED": True}


@pytest.fixture
def live_server(app, seeded) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def wait_ready(page) -> None:
    page.wait_for_selector('#player[data-state="ready"]')


def answered_cells(page) -> int:
    return page.locator("#question-grid .cell.answered").count()


def sign_in_and_start(page, live_server, user, exam: str = "jft-basic-practice") -> None:
    page.goto(f"{live_server}/login")
    page.fill("#email", user.email)
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.click(f"form[action*='{exam}'] button")
    wait_ready(page)


def test_candidate_takes_practice_exam(page, live_server, make_candidate, clock, app):
    """Sign in, answer by click and by keyboard, lose the network (the failed tries are
    reported with the next save), reload, finish, see score."""
    user = make_candidate()
    sign_in_and_start(page, live_server, user)
    assert re.fullmatch(r"(19|20):\d\d", page.text_content("#timer"))
    assert page.text_content("#question-number") == "Question 1 of 16"

    page.locator("#answer-area .option").nth(1).click()
    page.wait_for_selector('#save-status[data-kind="saved"]')
    first_choice = page.locator("#answer-area input:checked").get_attribute("value")
    page.keyboard.press("n")
    page.keyboard.press("3")
    page.wait_for_selector('#save-status[data-kind="saved"]')
    page.keyboard.press("f")
    page.wait_for_selector('#save-status[data-kind="saved"]')

    page.route("**/responses/**", lambda route: route.abort())
    page.keyboard.press("n")
    page.keyboard.press("1")
    page.wait_for_selector('#save-status[data-kind="error"]')
    assert "retrying" in page.text_content("#save-status")
    page.unroute("**/responses/**")
    page.wait_for_selector('#save-status[data-kind="saved"]', timeout=20000)
    assert answered_cells(page) == 3
    with app.app_context():
        assert db.session.scalar(select(Attempt.save_retries)) >= 1

    clock.advance(seconds=125)
    page.reload()
    wait_ready(page)
    assert answered_cells(page) == 3
    assert page.locator("#question-grid .cell.flagged").count() == 1
    assert page.locator("#answer-area input:checked").get_attribute("value") == first_choice
    assert page.text_content("#timer") in ("17:55", "17:54")

    page.click("#finish")
    summary = page.text_content("#finish-summary")
    assert "13 questions are not answered" in summary
    assert "Questions: 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16" in summary
    page.click("#finish-confirm")
    page.wait_for_url(re.compile(r"/attempts/\w+/result$"))
    score = page.text_content("#score")
    assert re.search(r"Your score: \d+ \(scale 10-250\)", score)


def test_the_player_keeps_time_by_the_clock(page, live_server, make_candidate, app):
    """Every minute the page asks for the attempt's clock, not for the whole state; when
    the clock says the proctor paused the attempt, it fetches the state and covers the
    test. (The page's timers run on Playwright's clock, moved by hand.)"""
    from sqlalchemy import update

    page.clock.install()
    sign_in_and_start(page, live_server, make_candidate())
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    with page.expect_response(re.compile(r"/api/v1/attempts/\w+/clock$")):
        page.clock.run_for(60_000)
    page.wait_for_timeout(300)  # a state read that should not come would come now
    assert [url.rsplit("/", 1)[1] for url in asked if "/api/v1/attempts/" in url] == ["clock"]
    with app.app_context():
        db.session.execute(update(Attempt).values(paused_at=Attempt.started_at))
        db.session.commit()
    with page.expect_response(re.compile(r"/api/v1/attempts/\w+$")):
        page.clock.run_for(60_000)
    page.wait_for_selector("#pause-overlay", state="visible")


def test_a_page_that_saves_reads_no_clock(page, live_server, make_candidate):
    """Each acknowledged save re-anchors the countdown, so the clock is read only once a
    minute has passed without one (here 50 s after the save, 110 s after the start)."""
    page.clock.install()
    sign_in_and_start(page, live_server, make_candidate())
    asked = []
    page.on("request", lambda request: asked.append(request.url.rsplit("/", 1)[1]))
    page.clock.run_for(50_000)
    with page.expect_response(re.compile(r"/responses/q1$")):
        page.keyboard.press("2")
    page.clock.run_for(50_000)  # 100 s after the start, 50 s after the save
    page.wait_for_timeout(300)  # a clock read that should not come would come now
    assert "clock" not in asked
    with page.expect_response(re.compile(r"/api/v1/attempts/\w+/clock$")):
        page.clock.run_for(15_000)


def test_ruby_renders_as_furigana(page, live_server, make_candidate):
    """Items with furigana render real <ruby> elements with their reading."""
    user = make_candidate()
    sign_in_and_start(page, live_server, user)
    readings = []
    for _ in range(16):
        readings += page.eval_on_selector_all(
            "#question rt", "nodes => nodes.map(n => n.textContent)"
        )
        page.keyboard.press("n")
    assert readings, "the sample form should contain furigana"
    assert all(re.fullmatch(r"[ぁ-ゟ]+", reading) for reading in readings)


def test_finish_waits_for_an_answer_in_flight(page, live_server, make_candidate, app):
    """Finishing while a save is still on its way scores that answer: the page sends the
    finish only after the save is acknowledged. (The short wait gives a page that would
    finish too early the chance to do so.)"""
    from sqlalchemy import select

    from testing_center.attempts.models import AttemptItem, Response
    from testing_center.extensions import db

    user = make_candidate()
    sign_in_and_start(page, live_server, user)
    held = []
    page.route("**/responses/**", lambda route: held.append(route))
    with page.expect_request("**/responses/q1"):
        page.keyboard.press("2")
    chosen = page.locator("#answer-area input:checked").get_attribute("value")
    page.click("#finish")
    page.click("#finish-confirm")
    page.wait_for_timeout(500)
    assert "/result" not in page.url
    held[0].continue_()
    page.unroute("**/responses/**")
    page.wait_for_url(re.compile(r"/attempts/\w+/result$"))
    with app.app_context():
        stored = db.session.scalar(
            select(Response.value).join(AttemptItem).where(AttemptItem.ref == "q1")
        )
    assert stored == chosen


def test_answers_survive_signing_out_elsewhere(page, live_server, make_candidate, app):
    """Signed out in another tab, the page keeps the answer and sends it after sign-in."""
    from sqlalchemy import select

    from testing_center.attempts.models import AttemptItem, Response
    from testing_center.extensions import db

    user = make_candidate()
    sign_in_and_start(page, live_server, user)
    other_tab = page.context.new_page()
    other_tab.goto(f"{live_server}/exams")
    other_tab.click("text=Sign out")
    page.keyboard.press("3")
    page.wait_for_selector('#save-status[data-kind="error"]')
    assert "Sign in again" in page.text_content("#save-status")
    chosen = page.locator("#answer-area input:checked").get_attribute("value")
    other_tab.fill("#email", user.email)
    other_tab.fill("#password", PASSWORD)
    other_tab.click("button.primary")
    page.reload()
    wait_ready(page)
    page.wait_for_selector('#save-status[data-kind="saved"]')
    with app.app_context():
        stored = db.session.scalar(
            select(Response.value).join(AttemptItem).where(AttemptItem.ref == "q1")
        )
    assert stored == chosen


def answer_current_question(page) -> str:
    """Answer the question on screen the way a candidate would, whatever its type."""
    area = page.locator("#answer-area")
    kind = area.get_attribute("data-type")
    if kind in ("single_choice", "true_false"):
        area.locator(".option").first.click()
    elif kind == "multiple_response":
        area.locator(".option").nth(0).click()
        area.locator(".option").nth(1).click()
    elif kind == "ordering":
        area.locator("button[aria-label='Move down']").first.click()
    elif kind == "text_entry":
        page.fill("#text-answer", "さむい")
        page.keyboard.press("Tab")
    elif kind == "matching":
        for select in area.locator("select").all():
            select.select_option(index=1)
    page.wait_for_selector('#save-status[data-kind="saved"]')
    return kind


def test_every_item_type_in_the_browser(page, live_server, make_candidate, app):
    """Every type of the tour renders and takes an answer; a recording plays once counted."""
    from playwright.sync_api import expect  # waits by locator: the CSP refuses page eval
    from sqlalchemy import select

    from testing_center.attempts.models import AttemptItem, AttemptPlay, Response
    from testing_center.extensions import db

    sign_in_and_start(page, live_server, make_candidate(), exam="item-types-tour")
    kinds = []
    for _ in range(15):
        if page.locator("#item-audio .play").is_visible():
            page.click("#item-audio .play")
            expect(page.locator("#item-audio .plays-left")).not_to_have_text(
                re.compile(r"^Plays left: 2")
            )
        kinds.append(answer_current_question(page))
        page.keyboard.press("n")
    assert set(kinds) == {
        "single_choice",
        "multiple_response",
        "ordering",
        "text_entry",
        "matching",
        "true_false",
    }
    assert page.locator("#question-grid .cell.answered").count() == 15
    with app.app_context():
        stored = dict(
            db.session.execute(select(AttemptItem.ref, Response.value).join(Response)).all()
        )
        plays = db.session.scalars(select(AttemptPlay.plays)).all()
    assert all(value is not None for value in stored.values())
    assert "さむい" in stored.values()
    assert sorted(plays) == [0, 1, 1]
    page.click("#finish")
    page.click("#finish-confirm")
    page.wait_for_url(re.compile(r"/attempts/\w+/result$"))
    assert re.search(r"Your score: \d+ of 15", page.text_content("#score"))


def test_jlpt_style_sections_with_listening(page, live_server, make_candidate, app, clock):
    """A JLPT-style practice test: sections in order, each finished in turn, a recording
    played in the listening section, then a result on the scaled scoring sections."""
    from playwright.sync_api import expect  # waits by locator: the CSP refuses page eval

    from testing_center.extensions import db
    from testing_center.seed import seed_content

    with app.app_context():
        seed_content(db.session, clock(), samples=["jlpt_n4_n1"])
        db.session.commit()
    sign_in_and_start(page, live_server, make_candidate(), exam="jlpt-n4-practice")
    tabs = page.locator("#section-tabs .tab")
    assert tabs.count() == 3
    assert (
        page.locator("#section-tabs .tab[aria-current]")
        .text_content()
        .startswith("Language Knowledge (Vocabulary)")
    )
    assert page.text_content("#question-number") == "Question 1 of 4"
    answer_current_question(page)
    for _ in range(2):  # vocabulary, then grammar and reading
        page.click("#finish-section")
        page.click("#finish-section-confirm")
        page.wait_for_selector("#section-tabs .tab.finished")
    wait_ready(page)
    page.wait_for_selector("#section-tabs .tab[aria-current]:has-text('Listening')")
    assert page.locator("#section-tabs .tab.finished").count() == 2
    page.click("#item-audio .play")
    expect(page.locator("#item-audio .plays-left")).not_to_have_text(re.compile(r"^Plays left: 1"))
    assert page.locator("#item-audio .play").is_disabled()
    answer_current_question(page)
    page.click("#finish")
    page.click("#finish-confirm")
    page.wait_for_url(re.compile(r"/attempts/\w+/result$"))
    assert "scale 0-180" in page.text_content("#score")
    assert page.locator(".sections-table tbody tr").count() == 2
