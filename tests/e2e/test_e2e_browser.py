"""The Audit page in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from .e2e_support import ADMIN_PASSWORD, Panel, chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any, panel: Panel) -> Iterator[Any]:
    context = browser.new_context(base_url=panel.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.dialogs = dialogs
    page.goto("/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/audit")
    yield page
    context.close()


def rows(page: Any) -> Any:
    return page.locator("#audit-rows tr")


def test_log_in_and_see_own_login_at_the_top(page: Any) -> None:
    # The indexer takes a moment: reload until our login is the newest row.
    for _ in range(50):
        top = rows(page).first
        if top.locator("code").text_content() == "user.login":
            break
        page.wait_for_timeout(200)
        page.reload()
    top = rows(page).first
    assert top.locator("code").text_content() == "user.login"
    assert top.locator(".username").text_content() == "admin"
    # Shown in the page's zone (the browser's, adopted on the first visit), exact UTC on hover.
    time = top.locator("time")
    assert time.get_attribute("title") == time.get_attribute("datetime")
    zone = ZoneInfo(page.locator("#tz-select").input_value())
    utc = datetime.fromisoformat(time.get_attribute("datetime"))
    assert time.text_content() == utc.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def test_load_more_adds_100_rows_without_reload(page: Any) -> None:
    assert rows(page).count() == 100
    page.evaluate("window.__same_page = true")
    page.click("#load-more")
    # Playwright's own waiting (wait_for_function) evaluates strings, which our CSP forbids.
    rows(page).nth(199).wait_for()
    assert rows(page).count() == 200
    assert page.evaluate("window.__same_page") is True
    assert rows(page).nth(100).locator("time").get_attribute("datetime")


def test_filter_narrows_the_table_and_the_count(page: Any) -> None:
    page.select_option("select[name=action]", "trip.create")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**action=trip.create**")
    assert page.locator("#total").get_attribute("data-total") == "25"
    assert rows(page).count() == 25
    actions = rows(page).locator("code").all_text_contents()
    assert set(actions) == {"trip.create"}
    assert page.locator("#load-more").count() == 0


def test_details_expand_to_pretty_json(page: Any) -> None:
    page.goto("/admin/audit?action=trip.update")
    box = rows(page).first.locator("details")
    pretty = box.locator("pre")
    assert not pretty.is_visible()
    box.locator("summary").click()
    assert pretty.is_visible()
    assert '\n  "n": ' in pretty.text_content()


def test_script_payload_in_details_never_runs(page: Any) -> None:
    page.goto("/admin/audit?q=onerror")
    assert int(page.locator("#total").get_attribute("data-total")) == 2
    for box in rows(page).locator("details").all():
        box.locator("summary").click()
    page.goto(
        "/admin/audit?action=trip.update"
    )  # one payload is on the first page, one comes by Load more
    page.click("#load-more")
    rows(page).nth(100).wait_for()
    for box in rows(page).locator("details").all()[:3] + rows(page).locator("details").all()[-40:]:
        box.locator("summary").click()
    page.wait_for_timeout(300)  # give an injected handler every chance to fire
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    # Not only blocked by the CSP: the payload never became markup at all. The only links in
    # the rows are the page's own (to the event, and cell filters), none in the details.
    assert (
        page.locator("#audit-rows img, #audit-rows script, #audit-rows td.details a").count() == 0
    )
    hrefs = page.locator("#audit-rows a").evaluate_all("links => links.map(a => a.href)")
    assert hrefs and all(href.startswith(page.url.split("?")[0]) for href in hrefs)
    text = page.locator("#audit-rows").text_content()
    assert "<script>window.__pwned=2;alert(2)</script>" in text  # shown as text, not run
