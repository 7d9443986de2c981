"""The review app in a real headless Chromium (Debian's chromium + chromium-driver, Selenium), real broker.

A reviewer logs in, opens the queue, resolves one task with the mouse and one with the keyboard, and the
exact decisions are read back from the broker. Screenshots of the queue and a task page are written to
`$REGSOSEK_REVIEW_SCREENSHOTS` when set (docs/review-*.png were made that way), else to the tmp folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contracts.review_decisions import ReviewOutcome, decision_id_of
from services.review.app import build_app
from tests.review_broker import decisions_on, publish_world, ready, review_settings, wait_for
from tests.support.gateway import serving
from tests.support.review import CANDIDATE_NIKS, PASSWORD, sample_master
from tests.unit.review_support import NOW, USERS

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.support.broker import RunningBroker

pytestmark = pytest.mark.broker

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
#: Flags for a closed network: no background connections, no first-run UI, nothing kept between runs.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium driven through the system chromedriver (CI installs both, see .ci/run)."""
    if CHROMIUM is None or DRIVER is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromium-driver must be installed in CI (.ci/run installs them)")
        pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("REGSOSEK_REVIEW_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_reviewer_resolves_tasks_by_mouse_and_by_keyboard(
    kafka_broker: RunningBroker, browser: WebDriver, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    settings = review_settings(kafka_broker.bootstrap, tmp_path)
    a, b, _ = publish_world(settings)
    app = build_app(settings, users=USERS, master=sample_master(), clock=lambda: NOW)
    shots = _shots(tmp_path)
    with serving(app) as base:
        wait_for(lambda: ready(base), "the review app to read its topics")
        browser.get(f"{base}/")  # not logged in: sent to the login page
        browser.find_element(By.ID, "user").send_keys("rina")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "login").click()
        wait_for(lambda: browser.find_elements(By.ID, "queue"), "the queue page")
        links = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "a.task-link")]
        assert links == [a.task_id, b.task_id]
        browser.save_screenshot(str(shots / "review-queue.png"))

        # Mouse: open the first task, click "Accept candidate 2".
        browser.find_element(By.CSS_SELECTOR, "a.task-link").click()
        wait_for(lambda: browser.find_elements(By.ID, "accept-2"), "the task page")
        assert browser.find_element(By.ID, "task-id").text == a.task_id
        browser.set_window_size(1400, 1450)  # the whole task page, waterfalls and KK included
        browser.save_screenshot(str(shots / "review-task.png"))
        browser.find_element(By.ID, "accept-2").click()
        wait_for(lambda: browser.find_elements(By.ID, "confirmed"), "the confirmation")
        assert browser.find_element(By.ID, "task-id").text == b.task_id  # the next task is shown

        # Keyboard: "n" on the next task = none of these (new person).
        browser.find_element(By.TAG_NAME, "body").send_keys("n")
        wait_for(
            lambda: (
                "new person" in browser.find_element(By.ID, "confirmed").text
                if browser.find_elements(By.ID, "queue")
                else False
            ),
            "the keyboard decision",
        )
        assert browser.find_elements(By.CSS_SELECTOR, "a.task-link") == []  # queue empty
        produced = decisions_on(settings)

        # Keyboard: "u" undoes the last decision (a reversing decision goes to the broker).
        browser.find_element(By.TAG_NAME, "body").send_keys("u")
        wait_for(lambda: browser.find_elements(By.ID, "task-id"), "the reopened task")
        assert browser.find_element(By.ID, "task-id").text == b.task_id
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)  # harmless key: nothing happens
        after_undo = decisions_on(settings)

    assert sorted((k, d.decision_id, d.outcome, d.chosen_record_id, d.reviewer_id) for k, d in produced) == sorted(
        [
            (a.member_key, decision_id_of(a.task_id, 0), ReviewOutcome.ACCEPT, CANDIDATE_NIKS[1], "rina"),
            (b.member_key, decision_id_of(b.task_id, 0), ReviewOutcome.NEW_PERSON, None, "rina"),
        ]
    )
    undo = [d for _, d in after_undo if d.outcome is ReviewOutcome.UNDO]
    assert len(after_undo) == 3 and [(d.task_id, d.revokes_decision_id) for d in undo] == [
        (b.task_id, decision_id_of(b.task_id, 0))
    ]
