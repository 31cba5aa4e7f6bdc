// The Audit page's behaviour: the reader's time zone, the facets, "Load more" and the chart.
// Every value from the log goes into the page through textContent or an attribute: never through
// innerHTML, so a hostile value stays text. No inline script or style: the CSP forbids both, and
// element.style (the CSSOM) is the only styling done here.
"use strict";

(function () {
  const ZONE_COOKIE = "trek_tz";
  // The URL keys of the filter: what a cell or chart link keeps of the current address.
  const FILTER_KEYS = ["action", "user", "ip", "resource", "source", "q", "since", "until", "tz"];
  const KEPT_KEYS = new Set(FILTER_KEYS.concat(FILTER_KEYS.slice(0, 5).map((k) => k + "!")));
  const numbers = new Intl.NumberFormat("en-US");

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function readCookie(name) {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return rest.join("=");
    }
    return null;
  }

  // ---- The zone ---------------------------------------------------------------------------

  function pageZone() {
    const table = document.getElementById("audit-table");
    const select = document.getElementById("tz-select");
    return (table && table.dataset.zone) || (select && select.value) ||
      document.documentElement.dataset.zone || "UTC";
  }

  function writeZoneCookie(zone) {
    // IANA names are letters, digits and / _ + -: nothing a cookie value must escape.
    if (!/^[A-Za-z0-9/_+-]{1,64}$/.test(zone)) return false;
    const secure = window.location.protocol === "https:" ? "; Secure" : "";
    document.cookie = ZONE_COOKIE + "=" + zone + "; Path=/; Max-Age=31536000; SameSite=Lax" + secure;
    return readCookie(ZONE_COOKIE) === zone;
  }

  // A first visit has neither ?tz= nor the cookie: remember the browser's zone and show the page
  // in it. Reloads at most once per tab session, and only when the cookie really was stored and
  // changes the zone, so blocked cookies or a zone the server refuses cannot make a loop.
  function adoptBrowserZone() {
    if (new URLSearchParams(window.location.search).has("tz")) return false;
    if (readCookie(ZONE_COOKIE) !== null) return false;
    let zone;
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (error) {
      return false;
    }
    if (!zone) return false;
    let reloaded = false;
    try {
      reloaded = window.sessionStorage.getItem("trek_tz_reloaded") === "1";
      window.sessionStorage.setItem("trek_tz_reloaded", "1");
    } catch (error) {
      reloaded = true; // no storage to remember the reload in: never risk a loop
    }
    if (!writeZoneCookie(zone) || zone === pageZone() || reloaded) return false;
    window.location.reload();
    return true;
  }

  function setUpZoneSelect() {
    const select = document.getElementById("tz-select");
    if (!select) return;
    select.addEventListener("change", function () {
      writeZoneCookie(select.value);
      const form = select.form || document.getElementById("filters");
      if (!form) return;
      if (form.requestSubmit) form.requestSubmit();
      else form.submit();
    });
  }

  function zoneFormatter(zone) {
    const options = {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    };
    try {
      return new Intl.DateTimeFormat("en-CA", Object.assign({ timeZone: zone }, options));
    } catch (error) {
      return new Intl.DateTimeFormat("en-CA", Object.assign({ timeZone: "UTC" }, options));
    }
  }

  // "2026-11-26 14:03:07", the form the server's display_time gives.
  function displayTime(formatter, iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return iso;
    const part = {};
    for (const p of formatter.formatToParts(when)) part[p.type] = p.value;
    return part.year + "-" + part.month + "-" + part.day + " " +
      part.hour + ":" + part.minute + ":" + part.second;
  }

  // ---- Links built from the current address ----------------------------------------------

  function filterParams() {
    const params = new URLSearchParams();
    for (const [key, value] of new URLSearchParams(window.location.search)) {
      if (KEPT_KEYS.has(key)) params.append(key, value);
    }
    return params;
  }

  // Like the server's Query.link(add=...): the pair added once, before/through dropped.
  function linkAdding(key, value) {
    const params = filterParams();
    if (!params.getAll(key).includes(value)) params.append(key, value);
    return "?" + params.toString();
  }

  // ---- Facets -------------------------------------------------------------------------------

  function facetNote(list, className, text) {
    list.replaceChildren(el("li", text, { class: className }));
  }

  function fillFacet(list, facet) {
    if (facet.timed_out) {
      facetNote(list, "facet-timeout", "Too many events to count in time: narrow the filter.");
      return;
    }
    if (!facet.values.length) {
      facetNote(list, "facet-empty", "No values.");
      return;
    }
    const items = facet.values.map(function (item) {
      const li = el("li");
      li.appendChild(el("a", item.value, { class: "facet-add", href: item.add }));
      li.appendChild(document.createTextNode(" "));
      const exclude = el("a", "≠", {
        class: "facet-exclude", href: item.exclude, title: "Exclude",
      });
      exclude.setAttribute("aria-label", "Exclude " + item.value);
      li.appendChild(exclude);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", numbers.format(item.count), { class: "count" }));
      return li;
    });
    if (facet.more) items.push(el("li", "More values not listed.", { class: "facet-more" }));
    list.replaceChildren(...items);
  }

  async function loadFacets(section) {
    const lists = new Map();
    for (const box of section.querySelectorAll(".facet[data-field]")) {
      const list = box.querySelector("ol");
      if (list) lists.set(box.dataset.field, list);
    }
    section.setAttribute("aria-busy", "true");
    for (const list of lists.values()) facetNote(list, "facet-loading", "Counting…");
    try {
      const url = new URL(section.dataset.api, window.location.href);
      const response = await fetch(url, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      const body = await response.json().catch(function () { return {}; });
      if (!response.ok) throw new Error(body.error || "the server answered " + response.status);
      const seen = new Set();
      for (const facet of body.facets || []) {
        const list = lists.get(facet.field);
        if (!list) continue;
        fillFacet(list, facet);
        seen.add(facet.field);
      }
      for (const [field, list] of lists) {
        if (!seen.has(field)) facetNote(list, "facet-empty", "No values.");
      }
    } catch (error) {
      for (const list of lists.values()) {
        facetNote(list, "facet-error", "Could not count the values: " + error.message);
      }
    } finally {
      section.removeAttribute("aria-busy");
    }
  }

  function setUpFacets() {
    const section = document.getElementById("facets");
    if (!section || !section.dataset.api) return;
    // Alt- or Shift-click on a value excludes it instead (and keeps the browser from
    // downloading the link or opening a window).
    section.addEventListener("click", function (event) {
      const add = event.target.closest && event.target.closest("a.facet-add");
      if (!add || !(event.altKey || event.shiftKey)) return;
      const exclude = add.parentElement.querySelector("a.facet-exclude");
      if (!exclude) return;
      event.preventDefault();
      window.location.assign(exclude.href);
    });
    loadFacets(section);
  }

  // ---- Rows, as the server builds them ----------------------------------------------------

  function cellLink(key, value, label, extraClass) {
    const link = el("a", null, {
      class: extraClass ? "cell-filter " + extraClass : "cell-filter",
      "data-key": key, "data-value": value, href: linkAdding(key, value),
    });
    if (label instanceof Node) link.appendChild(label);
    else link.textContent = label;
    return link;
  }

  function labelled(cell, table, index) {
    // The server's labels ("Time", "User", ...): the header's own text, without the zone.
    const header = table.tHead && table.tHead.rows[0] && table.tHead.rows[0].cells[index];
    if (header && header.firstChild) {
      cell.setAttribute("data-label", header.firstChild.textContent.trim());
    }
    return cell;
  }

  function userCell(user) {
    const td = el("td", null, { class: "user" });
    if (!user) {
      td.appendChild(el("span", "anonymous", { class: "anonymous" }));
      return td;
    }
    if (user.username) {
      td.appendChild(cellLink("user", user.username, user.username, "username"));
    } else if (user.id !== null && user.id !== undefined) {
      td.appendChild(cellLink("user", String(user.id), "#" + user.id, "username"));
    }
    if (user.email) {
      if (td.firstChild) td.appendChild(document.createTextNode(" "));
      td.appendChild(cellLink("user", user.email, user.email, "email"));
    }
    return td;
  }

  function detailsCell(details, sealed) {
    const td = el("td", null, { class: "details" });
    const box = el("details");
    if (details === null || details === undefined) {
      box.appendChild(el("summary", "no details", { class: "none" }));
    } else {
      box.appendChild(el("summary", JSON.stringify(details)));
      box.appendChild(el("pre", JSON.stringify(details, null, 2)));
    }
    box.appendChild(el("p", sealed ? "Covered by a seal." : "Not yet sealed.",
      { class: sealed ? "seal-note sealed" : "seal-note" }));
    td.appendChild(box);
    return td;
  }

  // Where event pages live, read off a row the server linked (the panel may be mounted under
  // a prefix), else the usual place.
  function eventPagePrefix(table) {
    for (const link of table.querySelectorAll("tr[data-id] td.time a[href]")) {
      const id = encodeURIComponent(link.closest("tr").dataset.id);
      const path = new URL(link.href, window.location.href).pathname;
      if (path.endsWith("/" + id)) return path.slice(0, path.length - id.length);
    }
    return "/admin/audit/event/";
  }

  function rowBuilder(table) {
    const catalog = JSON.parse(table.dataset.catalog || "{}");
    // The Source column is there only when audit.db holds more than one source.
    const showSources = table.dataset.sources === "shown";
    const formatter = zoneFormatter(pageZone());
    const eventBase = eventPagePrefix(table);

    return function row(entry) {
      const attrs = { "data-id": entry.id };
      if (entry.row !== undefined && entry.row !== null) attrs["data-row"] = String(entry.row);
      const tr = el("tr", null, attrs);
      const timeCell = el("td", null, { class: "time" });
      const link = el("a", null, { href: eventBase + encodeURIComponent(entry.id) });
      link.appendChild(el("time", displayTime(formatter, entry.ts),
        { datetime: entry.ts, title: entry.ts }));
      timeCell.appendChild(link);
      const cells = [timeCell];
      if (showSources) {
        const source = el("td", null, { class: "source" });
        source.appendChild(cellLink("source", entry.source, entry.source));
        cells.push(source);
      }
      cells.push(userCell(entry.user));
      const action = el("td", null, { class: "action" });
      action.appendChild(cellLink("action", entry.action,
        el("code", entry.action, { title: catalog[entry.action] || "" })));
      cells.push(action);
      for (const key of ["resource", "ip"]) {
        const td = el("td", null, { class: key });
        if (entry[key]) td.appendChild(cellLink(key, entry[key], entry[key]));
        cells.push(td);
      }
      cells.push(detailsCell(entry.details, entry.sealed === true));
      cells.forEach(function (cell, index) { tr.appendChild(labelled(cell, table, index)); });
      return tr;
    };
  }

  // ---- Load more ----------------------------------------------------------------------------

  // The address of what the table now shows: from the first row shown (or the given `before`)
  // down to the last, so that a reload or a shared link shows the same rows.
  function rememberShownRows(rows, through) {
    const url = new URL(window.location.href);
    if (!url.searchParams.has("before")) {
      const first = rows.querySelector("tr[data-row]");
      if (!first) return;
      url.searchParams.set("before", String(Number(first.dataset.row) + 1));
    }
    url.searchParams.set("through", String(through));
    window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  }

  function setUpLoadMore() {
    const table = document.getElementById("audit-table");
    const more = document.getElementById("load-more");
    if (!table || !more || !table.dataset.api) return;
    const rows = document.getElementById("audit-rows");
    const status = document.getElementById("load-status");
    const row = rowBuilder(table);
    more.addEventListener("click", async function (event) {
      event.preventDefault();
      if (more.getAttribute("aria-busy") === "true") return;
      more.setAttribute("aria-busy", "true");
      if (status) status.textContent = "Loading…";
      try {
        const url = new URL(table.dataset.api, window.location.href);
        url.searchParams.set("before", more.dataset.next);
        url.searchParams.set("limit", "100");
        const response = await fetch(url, {
          credentials: "same-origin", headers: { Accept: "application/json" },
        });
        if (!response.ok) throw new Error("the server answered " + response.status);
        const page = await response.json();
        const fragment = document.createDocumentFragment();
        page.entries.forEach(function (entry) { fragment.appendChild(row(entry)); });
        rows.appendChild(fragment);
        if (status) status.textContent = "";
        const last = page.entries.length ? page.entries[page.entries.length - 1] : null;
        // `next` is the last row's id when more follow; at the end, row 1 is "down to the end".
        const through = last && last.row ? last.row : page.next || 1;
        rememberShownRows(rows, through);
        if (page.next) {
          more.dataset.next = page.next;
          const link = new URL(more.href, window.location.href);
          link.searchParams.set("before", page.next);
          link.searchParams.delete("through");
          more.href = link.pathname + link.search;
        } else {
          more.remove();
          if (status) status.textContent = "All entries shown.";
        }
      } catch (error) {
        if (status) status.textContent = "Could not load more entries: " + error.message;
      } finally {
        more.removeAttribute("aria-busy");
      }
    });
  }

  // ---- The chart ----------------------------------------------------------------------------

  function isoSeconds(ms) {
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  function setUpChartTip(svg, tip) {
    const host = tip.parentElement;
    function show(link) {
      const bar = link.querySelector(".bar");
      if (!bar) return;
      const title = bar.querySelector("title");
      tip.textContent = title ? title.textContent : bar.dataset.count + " events";
      tip.hidden = false;
      const box = bar.getBoundingClientRect();
      const frame = host.getBoundingClientRect();
      const width = tip.offsetWidth;
      const left = box.left + box.width / 2 - frame.left - width / 2;
      tip.style.left = Math.max(0, Math.min(left, frame.width - width)) + "px";
      tip.style.top = Math.max(0, box.top - frame.top - tip.offsetHeight - 6) + "px";
    }
    function hide() { tip.hidden = true; }
    function linkOf(target) { return target.closest ? target.closest("a.bar-link") : null; }
    svg.addEventListener("pointerover", function (event) {
      const link = linkOf(event.target);
      if (link) show(link);
      else hide();
    });
    svg.addEventListener("pointerleave", hide);
    svg.addEventListener("focusin", function (event) {
      const link = linkOf(event.target);
      if (link) show(link);
    });
    svg.addEventListener("focusout", hide);
    return hide;
  }

  // Drag across the plot to narrow the time range to the span dragged over; a press without a
  // drag is a click, which follows the bar's own link.
  function setUpChartDrag(svg, hideTip) {
    const plot = svg.querySelector("rect.plot");
    const start = Date.parse(svg.dataset.start);
    const end = Date.parse(svg.dataset.end);
    if (!plot || Number.isNaN(start) || Number.isNaN(end) || end <= start) return;
    const px = Number(plot.getAttribute("x"));
    const py = Number(plot.getAttribute("y"));
    const pw = Number(plot.getAttribute("width"));
    const ph = Number(plot.getAttribute("height"));
    if (!(pw > 0)) return;
    let drag = null;
    let swallowClick = false;

    function svgX(event) {
      const matrix = svg.getScreenCTM();
      if (!matrix) return null;
      const point = svg.createSVGPoint();
      point.x = event.clientX;
      point.y = event.clientY;
      return point.matrixTransform(matrix.inverse()).x;
    }
    function clamp(x) { return Math.max(px, Math.min(px + pw, x)); }
    function timeAt(x) { return start + (clamp(x) - px) / pw * (end - start); }
    function clear() {
      if (drag && drag.box) drag.box.remove();
      svg.classList.remove("dragging");
      drag = null;
    }

    svg.addEventListener("dragstart", function (event) { event.preventDefault(); });
    svg.addEventListener("pointerdown", function (event) {
      if (event.button !== 0 || !event.isPrimary) return;
      const x = svgX(event);
      if (x === null || x < px || x > px + pw) return;
      drag = { x0: x, clientX: event.clientX, box: null, pointer: event.pointerId };
    });
    svg.addEventListener("pointermove", function (event) {
      if (!drag || event.pointerId !== drag.pointer) return;
      if (!drag.box) {
        if (Math.abs(event.clientX - drag.clientX) < 4) return;
        svg.setPointerCapture(event.pointerId);
        drag.box = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        drag.box.setAttribute("class", "selection");
        drag.box.setAttribute("y", String(py));
        drag.box.setAttribute("height", String(ph));
        svg.appendChild(drag.box);
        svg.classList.add("dragging");
        hideTip();
      }
      const x = svgX(event);
      if (x === null) return;
      const a = clamp(drag.x0);
      const b = clamp(x);
      drag.box.setAttribute("x", String(Math.min(a, b)));
      drag.box.setAttribute("width", String(Math.abs(b - a)));
      drag.x1 = x;
      event.preventDefault();
    });
    svg.addEventListener("pointerup", function (event) {
      if (!drag || event.pointerId !== drag.pointer) return;
      const done = drag.box ? drag : null;
      if (!done) {
        drag = null;
        return;
      }
      // The click the browser sends after this pointerup, if any, comes before any timer.
      swallowClick = true;
      window.setTimeout(function () { swallowClick = false; }, 0);
      const x = svgX(event);
      const a = timeAt(done.x0);
      const b = timeAt(x === null ? done.x1 : x);
      const since = Math.floor(Math.min(a, b) / 1000) * 1000;
      const until = Math.ceil(Math.max(a, b) / 1000) * 1000;
      if (until <= since) {
        clear();
        return;
      }
      const url = new URL(window.location.href);
      const params = filterParams();
      params.set("since", isoSeconds(since));
      params.set("until", isoSeconds(until));
      window.location.assign(url.pathname + "?" + params.toString());
    });
    svg.addEventListener("pointercancel", clear);
    // The click that ends a drag is not a click on a bar.
    svg.addEventListener("click", function (event) {
      if (!swallowClick) return;
      swallowClick = false;
      event.preventDefault();
      event.stopPropagation();
    }, true);
  }

  function setUpChart() {
    const svg = document.getElementById("activity-chart");
    const tip = document.getElementById("chart-tip");
    if (!svg) return;
    const hideTip = tip ? setUpChartTip(svg, tip) : function () {};
    setUpChartDrag(svg, hideTip);
  }

  // ---- Times outside the table --------------------------------------------------------------

  // Times the server left in the stored form (the seal panel's) are shown in the page's zone.
  function showStoredTimes() {
    const formatter = zoneFormatter(pageZone());
    for (const time of document.querySelectorAll("#seal-panel time[datetime]")) {
      const iso = time.getAttribute("datetime");
      if (time.textContent.trim() !== iso) continue;
      time.textContent = displayTime(formatter, iso);
      time.title = iso + " (UTC)";
    }
  }

  if (adoptBrowserZone()) return;
  setUpZoneSelect();
  showStoredTimes();
  setUpFacets();
  setUpLoadMore();
  setUpChart();
})();
