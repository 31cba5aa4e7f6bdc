"""An investigation in real headless Chromium: from the facets to the attacker, the event, the zone.

The panel is ``trek-audit serve`` over the scenario of ``investigation_support``: 356 failed
logins on alice from one address among some thousands of ordinary events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest

from .e2e_support import (
    ADMIN_PASSWORD,
    Panel,
    Session,
    chromium,
    create_account,
    start_panel,
    stop_panel,
    wait_for,
)
from .investigation_support import (
    ATTACKER_IP,
    ATTEMPTS,
    TAKEOVER_DELETES,
    VICTIM,
    Scenario,
    seed_investigation,
)

pytestmark = pytest.mark.browser

VIEWER = "vera"
VIEWER_PASSWORD = "e2e-viewer-password"
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")

# Measured in the page: every element with text of its own, against the first opaque
# background behind it (semi-transparent ones blended in), with the WCAG 2 formula. Large text
# (24 px, or 18.66 px bold) needs 3:1, the rest 4.5:1. SVG text is measured by its fill.
CONTRAST_SCRIPT = """() => {
  const channel = (v) => {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const luminance = (c) =>
    0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const parse = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, below) => [0, 1, 2].map((i) => top[i] * top[3] + below[i] * (1 - top[3]))
    .concat([1]);
  const background = (node) => {
    const layers = [];
    for (let e = node; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) layers.push(c);
      if (c && c[3] >= 1) break;
    }
    let colour = [255, 255, 255, 1];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const failures = [];
  let checked = 0;
  for (const e of document.body.querySelectorAll("*")) {
    const own = Array.from(e.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || e.closest("option, script, style, noscript, title")) continue;
    const style = getComputedStyle(e);
    if (style.visibility !== "visible" || e.getClientRects().length === 0) continue;
    const box = e.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const svg = e instanceof SVGElement;
    let fg = parse(svg ? style.fill : style.color);
    if (!fg) continue;
    const bg = background(svg ? e.ownerSVGElement || e : e);
    fg = over(fg, bg);
    const l1 = luminance(fg), l2 = luminance(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize);
    const bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked += 1;
    if (ratio < needed) {
      const classes = typeof e.className === "string" && e.className ?
        "." + e.className.split(" ").join(".") : "";
      failures.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + classes +
        " '" + e.textContent.trim().slice(0, 30) + "' " + ratio.toFixed(2) + " < " + needed +
        " (" + style.color + " on rgb(" + bg.slice(0, 3).join(",") + "))");
    }
  }
  return { checked, failures: Array.from(new Set(failures)) };
}"""


@pytest.fixture(scope="module")
def investigation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Panel, Scenario]]:
    data_dir = tmp_path_factory.mktemp("investigation") / "data"
    scenario = seed_investigation(data_dir)
    create_account(data_dir, VIEWER, VIEWER_PASSWORD, "viewer")
    panel = start_panel(data_dir, data_dir.parent / "serve.out")
    try:
        session = Session(panel.port)
        assert session.log_in("admin", ADMIN_PASSWORD) == 302
        wait_for(lambda: session.api()["total"] >= scenario.seeded + 1, timeout=60)
        yield panel, scenario
    finally:
        stop_panel(panel)


@dataclass
class Browsing:
    """Chromium on the panel: each page in a fresh context, signed in without a login form.

    Each account signs in once through the login form; its session cookie is then given to
    every new context (the login's password hashing would otherwise dominate the run).
    """

    browser: Any
    panel: Panel
    sessions: dict[str, Any] = field(default_factory=dict)  # username -> storage state

    def _session(self, username: str, password: str) -> Any:
        if username not in self.sessions:
            context = self.browser.new_context(base_url=self.panel.url, timezone_id="UTC")
            try:
                page = context.new_page()
                page.goto("/login")
                page.fill("input[name=username]", username)
                page.fill("input[name=password]", password)
                page.click("button[type=submit]")
                page.wait_for_url("**/admin/audit")
                state = context.storage_state()
            finally:
                context.close()
            # Without the zone cookie the page picked up: each context starts as a first visit.
            state["cookies"] = [c for c in state["cookies"] if c["name"] != "trek_tz"]
            self.sessions[username] = state
        return self.sessions[username]

    @contextmanager
    def page(
        self, username: str = "admin", password: str = ADMIN_PASSWORD, **options: Any
    ) -> Iterator[Any]:
        """A page of a fresh context (in UTC unless told), signed in, on the Audit page."""
        options.setdefault("timezone_id", "UTC")
        state = self._session(username, password)
        context = self.browser.new_context(base_url=self.panel.url, storage_state=state, **options)
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            audit(page)
            yield page
        finally:
            context.close()


@pytest.fixture(scope="module")
def browsing(investigation: tuple[Panel, Scenario]) -> Iterator[Browsing]:
    with chromium() as browser:
        yield Browsing(browser, investigation[0])


@pytest.fixture
def scenario(investigation: tuple[Panel, Scenario]) -> Scenario:
    return investigation[1]


@pytest.fixture
def page(browsing: Browsing) -> Iterator[Any]:
    with browsing.page() as page:
        yield page


def audit(page: Any, query: str = "") -> Any:
    response = page.goto("/admin/audit" + query)
    page.locator("#audit-table, #filter-problem").first.wait_for()
    return response


def total(page: Any) -> int:
    return int(page.locator("#total").get_attribute("data-total"))


def params(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def rows(page: Any) -> Any:
    return page.locator("#audit-rows tr")


def ids(page: Any) -> list[str]:
    """The event ids of the table's rows, top to bottom."""
    found: list[str] = rows(page).evaluate_all("rows => rows.map(r => r.dataset.id)")
    return found


ROW_SHAPE = """rows => rows.map(row => Array.from(row.cells).map(td => [
  td.className,
  td.dataset.label || "",
  td.textContent.replace(/\\s+/g, " ").trim(),
  Array.from(td.querySelectorAll("a")).map(a =>
    [a.className, a.getAttribute("href"), a.dataset.key || "", a.dataset.value || ""]),
  Array.from(td.querySelectorAll("time")).map(t => [t.getAttribute("datetime"), t.title]),
]))"""


def describe_rows(page: Any) -> list[Any]:
    """Each row's cells: class, label, text, links and times; link queries in a sorted form."""
    shapes: list[Any] = rows(page).evaluate_all(ROW_SHAPE)
    for cells in shapes:
        for cell in cells:
            for link in cell[3]:
                path, _, query = link[1].partition("?")
                link[1] = (path, sorted(parse_qsl(query)))
    return shapes


def facet_values(page: Any, field: str) -> Any:
    """The values of one facet, once the page's script has counted them."""
    box = page.locator(f'.facet[data-field="{field}"]')
    box.locator("li:not(.facet-loading)").first.wait_for()
    return box.locator("li:has(a.facet-add)")


def wait_for_facets(page: Any) -> None:
    for name in ("user", "ip", "action", "resource"):
        page.locator(f'.facet[data-field="{name}"] li:not(.facet-loading)').first.wait_for()


def test_the_attackers_address_tops_the_ip_facet_and_a_click_filters_by_it(
    page: Any, scenario: Scenario
) -> None:
    audit(page, "?action=user.login_failed")
    assert total(page) == scenario.failed_logins
    top = facet_values(page, "ip").first
    assert top.locator("a.facet-add").text_content() == ATTACKER_IP
    assert top.locator(".count").text_content() == str(ATTEMPTS)
    top.locator("a.facet-add").click()
    page.wait_for_url("**ip=**")
    assert params(page)["ip"] == [ATTACKER_IP]
    assert params(page)["action"] == ["user.login_failed"]
    assert total(page) == ATTEMPTS
    assert {c.text_content() for c in rows(page).locator("td.ip").all()} == {ATTACKER_IP}


@pytest.mark.parametrize("key", ["Alt", "Shift"])
def test_an_alt_or_shift_click_on_a_facet_value_excludes_it(
    page: Any, scenario: Scenario, key: str
) -> None:
    audit(page, "?action=user.login_failed")
    top = facet_values(page, "ip").first.locator("a.facet-add")
    assert top.text_content() == ATTACKER_IP
    top.click(modifiers=[key])
    page.wait_for_url(lambda url: "ip!" in parse_qs(urlsplit(url).query))
    assert params(page)["ip!"] == [ATTACKER_IP]
    assert "ip" not in params(page)
    assert total(page) == scenario.failed_logins - ATTEMPTS
    assert ATTACKER_IP not in page.locator("#audit-rows").text_content()


def test_the_facets_say_when_counting_took_too_long_or_failed(page: Any) -> None:
    too_long: dict[str, Any] = {
        "facets": [
            {"field": name, "values": [], "timed_out": True, "more": False}
            for name in ("user", "ip", "action", "resource")
        ]
    }
    page.route(
        "**/api/admin/audit/facets*",
        lambda route: route.fulfill(status=200, json=too_long),
    )
    audit(page, "?q=trip")
    note = page.locator('.facet[data-field="ip"] li.facet-timeout')
    note.wait_for()
    assert note.text_content() == "Too many events to count in time: narrow the filter."
    page.unroute("**/api/admin/audit/facets*")
    page.route(
        "**/api/admin/audit/facets*",
        lambda route: route.fulfill(status=400, json={"error": "q is too long", "parameter": "q"}),
    )
    audit(page, "?q=trips")
    error = page.locator('.facet[data-field="user"] li.facet-error')
    error.wait_for()
    assert "q is too long" in error.text_content()


def test_a_click_on_a_table_cell_filters_by_its_value(page: Any) -> None:
    audit(page, f"?user={VICTIM}")
    newest = rows(page).first  # the attacker's last trip.delete
    assert newest.locator("td.action code").text_content() == "trip.delete"
    newest.locator("td.ip a.cell-filter").click()
    page.wait_for_url("**ip=**")
    assert params(page)["user"] == [VICTIM]
    assert params(page)["ip"] == [ATTACKER_IP]
    assert set(params(page)) <= {"user", "ip", "tz"}
    # The failed logins, then the login, the MFA switched off and the deleted trips.
    assert total(page) == ATTEMPTS + 2 + TAKEOVER_DELETES
    chips = page.locator("#active-filters a.chip").all_text_contents()
    assert any(ATTACKER_IP in chip for chip in chips)


def test_a_quick_range_sets_since_and_narrows_the_total(page: Any) -> None:
    audit(page)
    everything = total(page)
    page.locator('#quick-ranges a[data-since="now-15m"]').click()
    page.wait_for_url("**since=now-15m**")
    assert page.locator("input[name=since]").input_value() == "now-15m"
    # Only what the panel recorded itself (these tests' logins) is that recent.
    assert 1 <= total(page) < everything - 3000
    recent = datetime.now(UTC) - timedelta(minutes=16)
    for time in rows(page).locator("td.time time").all():
        assert datetime.fromisoformat(time.get_attribute("datetime")) >= recent


def test_dragging_across_the_chart_narrows_since_and_until_to_the_span(page: Any) -> None:
    audit(page)
    everything = total(page)
    chart = page.locator("#activity-chart")
    start = datetime.fromisoformat(chart.get_attribute("data-start").replace("Z", "+00:00"))
    end = datetime.fromisoformat(chart.get_attribute("data-end").replace("Z", "+00:00"))
    plot = page.locator("#activity-chart rect.plot").bounding_box()
    y = plot["y"] + plot["height"] / 2
    page.mouse.move(plot["x"] + plot["width"] * 0.2, y)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] * 0.4, y, steps=5)
    page.locator("#activity-chart rect.selection").wait_for()
    page.mouse.move(plot["x"] + plot["width"] * 0.6, y, steps=5)
    page.mouse.up()
    page.wait_for_url("**until=**")
    since, until = params(page)["since"][0], params(page)["until"][0]
    assert ISO_Z.fullmatch(since) and ISO_Z.fullmatch(until)
    assert "before" not in params(page) and "through" not in params(page)
    span = (end - start).total_seconds()
    got_since = datetime.fromisoformat(since.replace("Z", "+00:00"))
    got_until = datetime.fromisoformat(until.replace("Z", "+00:00"))
    assert abs((got_since - start).total_seconds() / span - 0.2) < 0.01
    assert abs((got_until - start).total_seconds() / span - 0.6) < 0.01
    assert 0 < total(page) < everything


def test_hovering_a_bar_tells_its_count_and_a_click_follows_its_link(page: Any) -> None:
    audit(page, "?action=user.login_failed")
    link = page.locator("#activity-chart a.bar-link").last
    bar = link.locator("rect.bar")
    title = bar.locator("title").text_content()
    assert re.fullmatch(r".+: [\d,]+ events?", title)
    tip = page.locator("#chart-tip")
    assert tip.is_hidden()
    bar.hover()
    tip.wait_for(state="visible")
    assert tip.text_content() == title
    tip_box, bar_box = tip.bounding_box(), bar.bounding_box()
    assert abs(tip_box["y"] + tip_box["height"] - bar_box["y"]) < 40  # right above the bar
    assert tip_box["x"] <= bar_box["x"] + bar_box["width"] / 2 <= tip_box["x"] + tip_box["width"]
    # Without a mouse: a bar reached with the keyboard tells its count too.
    page.mouse.move(0, 0)
    tip.wait_for(state="hidden")
    first = page.locator("#activity-chart a.bar-link").first
    first.focus()
    tip.wait_for(state="visible")
    assert tip.text_content() == first.locator("title").text_content()
    href = link.get_attribute("href")
    count = int(bar.get_attribute("data-count"))
    bar.click()
    page.wait_for_url("**until=**")
    assert params(page) == parse_qs(urlsplit(href).query)
    assert total(page) == count


def test_a_chosen_zone_shows_times_in_it_and_reads_typed_times_in_it(
    page: Any, scenario: Scenario
) -> None:
    audit(page, "?action=user.login_failed")
    tokyo = ZoneInfo("Asia/Tokyo")
    utc_shown = rows(page).first.locator("time").text_content()
    page.select_option("#tz-select", "Asia/Tokyo")
    page.wait_for_url("**tz=Asia%2FTokyo**")
    assert "Asia/Tokyo" in page.locator("#zone-label").text_content()
    assert "Asia/Tokyo" in page.locator("th.time").text_content()
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies["trek_tz"] == "Asia/Tokyo"
    assert rows(page).first.locator("time").text_content() != utc_shown
    for time in rows(page).locator("td.time time").all()[:5]:
        utc = datetime.fromisoformat(time.get_attribute("datetime").replace("Z", "+00:00"))
        assert time.text_content() == utc.astimezone(tokyo).strftime("%Y-%m-%d %H:%M:%S")
    # A time typed without an offset is Tokyo's: half-way through the attack, to the minute.
    middle = datetime.fromisoformat(scenario.attack_ts[200].replace("Z", "+00:00"))
    middle = middle.replace(second=0, microsecond=0)
    typed = middle.astimezone(tokyo).strftime("%Y-%m-%d %H:%M")
    page.fill("input[name=since]", typed)
    page.click("#filters button[type=submit]")
    page.wait_for_url("**since=**")
    assert params(page)["since"] == [typed]
    expected = sum(
        datetime.fromisoformat(ts.replace("Z", "+00:00")) >= middle for ts in scenario.failed_ts
    )
    assert 0 < expected < scenario.failed_logins
    assert total(page) == expected


def test_a_first_visit_shows_the_page_in_the_browsers_zone(browsing: Browsing) -> None:
    with browsing.page(timezone_id="Europe/Berlin") as page:
        page.locator("#zone-label", has_text="Europe/Berlin").wait_for()
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        assert cookies["trek_tz"] == "Europe/Berlin"
        assert "tz" not in params(page)
        assert page.locator("#tz-select").input_value() == "Europe/Berlin"
        first = rows(page).first.locator("time")
        utc = datetime.fromisoformat(first.get_attribute("datetime"))
        shown = utc.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M:%S")
        assert first.text_content() == shown
        # Reloaded once: a second visit keeps the cookie and does not reload again.
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        audit(page)
        wait_for_facets(page)
        assert len(navigations) == 1


def test_the_event_page_shows_the_event_and_ten_neighbours_each_side(page: Any) -> None:
    audit(page, "?action=user.mfa_disable")
    assert total(page) == 1
    event_id = rows(page).first.get_attribute("data-id")
    rows(page).first.locator("td.time a").click()
    page.wait_for_url(f"**/admin/audit/event/{event_id}")
    assert page.locator("#field-action").text_content().startswith("user.mfa_disable")
    assert page.locator("#field-ip").text_content() == ATTACKER_IP
    assert f'"id":"{event_id}"' in page.locator("#raw-line").text_content()
    neighbours = page.locator("#neighbours tbody tr")
    assert neighbours.count() == 21
    current = page.locator("#neighbours tr.current")
    assert current.get_attribute("data-id") == event_id
    order = [int(r.get_attribute("data-row")) for r in neighbours.all()]
    assert order == sorted(order, reverse=True)
    assert order.index(int(current.get_attribute("data-row"))) == 10
    # The takeover around it: the login just before, the deleted trips just after.
    actions = neighbours.locator("td.action").all_text_contents()
    assert actions[11] == "user.login"
    assert actions[7:10] == ["trip.delete"] * TAKEOVER_DELETES
    page.locator("#see-in-table").click()
    page.wait_for_url("**through=**")
    assert rows(page).count() == 21
    assert rows(page).nth(10).get_attribute("data-id") == event_id


def test_a_bad_time_is_shown_by_its_box_and_the_other_boxes_keep_their_values(
    page: Any,
) -> None:
    response = audit(page, f"?user={VICTIM}&ip={ATTACKER_IP}&since=last+tuesday")
    assert response.status == 400
    since = page.locator("input[name=since]")
    assert since.input_value() == "last tuesday"
    assert since.get_attribute("aria-invalid") == "true"
    error = page.locator("#error-since")
    assert error.is_visible() and error.text_content().strip()
    assert page.locator("input[name=user]").input_value() == VICTIM
    assert page.locator("input[name=ip]").input_value() == ATTACKER_IP
    assert page.locator("input[name=user]").get_attribute("aria-invalid") is None
    assert page.locator("#filter-problem").is_visible()
    assert page.locator("#audit-table").count() == 0


def scrolls_sideways(page: Any) -> bool:
    width = page.evaluate("document.documentElement.scrollWidth")
    return bool(width > page.evaluate("window.innerWidth"))


def test_a_phone_screen_never_scrolls_sideways(browsing: Browsing) -> None:
    with browsing.page(viewport={"width": 390, "height": 844}) as page:
        for query in ("", f"?user={VICTIM}&action=user.login_failed", "?since=soon"):
            audit(page, query)
            if query != "?since=soon":
                wait_for_facets(page)
            assert not scrolls_sideways(page), query
        audit(page)
        cell = rows(page).first.locator("td.user")
        assert cell.evaluate("td => getComputedStyle(td).display") == "block"  # rows are cards
        chart = page.locator("#activity-chart").bounding_box()
        assert chart["x"] >= 0 and chart["x"] + chart["width"] <= 390
        rows(page).first.locator("td.time a").click()
        page.locator("#neighbours").wait_for()
        assert not scrolls_sideways(page)


def test_time_cells_stay_on_one_line_on_a_laptop_screen(browsing: Browsing) -> None:
    with browsing.page(viewport={"width": 1366, "height": 768}) as page:
        for query in ("", "?action=trip.update"):
            audit(page, query)
            wait_for_facets(page)
            assert not scrolls_sideways(page)
            lines = page.locator("#audit-rows td.time").evaluate_all(
                """cells => cells.map(td => {
                    const time = td.querySelector("time");
                    const line = parseFloat(getComputedStyle(time).lineHeight) ||
                        parseFloat(getComputedStyle(time).fontSize) * 1.5;
                    return [time.getClientRects().length, time.getBoundingClientRect().height,
                            line];
                })"""
            )
            assert len(lines) == 100
            for fragments, height, line in lines:
                assert fragments == 1
                assert height <= line + 1


def background_of(page: Any) -> str:
    return str(page.locator("body").evaluate("b => getComputedStyle(b).backgroundColor"))


def test_the_dark_theme_follows_the_system(browsing: Browsing) -> None:
    seen = {}
    for scheme in ("light", "dark"):
        with browsing.page(color_scheme=scheme) as page:
            seen[scheme] = (
                background_of(page),
                page.locator("#activity-chart .bar").first.evaluate(
                    "bar => getComputedStyle(bar).fill"
                ),
            )
    assert seen["light"][0] != seen["dark"][0]
    assert seen["light"][1] != seen["dark"][1]
    darkness = [int(v) for v in re.findall(r"\d+", seen["dark"][0])[:3]]
    assert sum(darkness) < 3 * 64


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_meets_aa_contrast(browsing: Browsing, scheme: str) -> None:
    with browsing.page(color_scheme=scheme) as page:
        audit(page, f"?user={VICTIM}")
        wait_for_facets(page)
        page.locator("#audit-rows details summary").first.click()  # an open details box
        page.locator("#activity-chart a.bar-link").last.hover()  # and the chart's tip
        page.locator("#chart-tip").wait_for(state="visible")
        pages = {"audit": page.evaluate(CONTRAST_SCRIPT)}
        audit(page, "?since=soon&user=x")
        pages["bad filter"] = page.evaluate(CONTRAST_SCRIPT)
        audit(page, "?action=user.mfa_disable")
        rows(page).first.locator("td.time a").click()
        page.locator("#neighbours").wait_for()
        pages["event"] = page.evaluate(CONTRAST_SCRIPT)
        for path in ("/admin/tokens", "/admin/accounts", "/account/password", "/admin/no-page"):
            page.goto(path)
            pages[path] = page.evaluate(CONTRAST_SCRIPT)
    for name, result in pages.items():
        assert result["checked"] > 5, name
        assert result["failures"] == [], name


def test_load_more_puts_the_rows_in_the_address_and_a_reload_shows_them_again(
    page: Any,
) -> None:
    # In a zone half an hour off the hour: the script's times must be the server's.
    audit(page, "?action=trip.update&tz=Asia/Kolkata")
    page.click("#load-more")
    rows(page).nth(199).wait_for()
    page.wait_for_url("**through=**")
    shown = ids(page)
    assert len(shown) == 200
    kept = params(page)
    assert kept["action"] == ["trip.update"]
    assert kept["tz"] == ["Asia/Kolkata"]
    assert int(kept["before"][0]) == int(rows(page).first.get_attribute("data-row")) + 1
    page.click("#load-more")
    rows(page).nth(299).wait_for()
    page.wait_for_url(lambda url: parse_qs(urlsplit(url).query)["through"] != kept["through"])
    shown = ids(page)
    built = describe_rows(page)[100:]
    page.reload()
    rows(page).first.wait_for()
    assert ids(page) == shown
    # The rows the script built are the server's, cell for cell (labels, links, times).
    assert built == describe_rows(page)[100:]
    assert page.locator("#load-more").count() == 1  # and it goes on from there


def test_a_viewer_reads_the_page_and_its_facets_without_the_admin_pages(
    browsing: Browsing,
) -> None:
    with browsing.page(VIEWER, VIEWER_PASSWORD) as page:
        assert rows(page).count() == 100
        assert facet_values(page, "action").count() >= 3
        nav = page.locator("header.top nav")
        assert nav.locator('a[href$="/admin/audit"]').count() == 1
        assert nav.locator('a[href*="/admin/accounts"]').count() == 0
        assert nav.locator('a[href*="/admin/tokens"]').count() == 0
    with browsing.page() as page:  # what the viewer does not see, an admin does
        nav = page.locator("header.top nav")
        assert nav.locator('a[href*="/admin/accounts"]').count() == 1
        assert nav.locator('a[href*="/admin/tokens"]').count() == 1


def test_the_pages_run_without_script_errors(browsing: Browsing) -> None:
    with browsing.page() as page:
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        def on_console(message: Any) -> None:
            # A missing favicon is the browser's business, not the page's.
            if message.type == "error" and "Failed to load resource" not in message.text:
                errors.append(message.text)

        page.on("console", on_console)
        audit(page, "?action=user.login_failed")
        wait_for_facets(page)
        page.locator("#activity-chart a.bar-link").first.hover()
        page.click("#load-more")
        rows(page).nth(100).wait_for()
        rows(page).first.locator("td.time a").click()
        page.locator("#neighbours").wait_for()
        assert errors == []
