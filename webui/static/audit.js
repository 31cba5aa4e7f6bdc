// The Audit page: local times (rows and the seal block), and "Load more" through the JSON API.
// Rows are built with DOM APIs and textContent only: no data ever goes through innerHTML.
"use strict";

(function () {
  const table = document.getElementById("audit-table");
  if (!table) return;
  const rows = document.getElementById("audit-rows");
  const status = document.getElementById("load-status");
  const catalog = JSON.parse(table.dataset.catalog || "{}");
  // The Source column is there only when audit.db holds more than one source.
  const showSources = table.dataset.sources === "shown";
  const formatter = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });

  function showLocalTime(el) {
    const iso = el.getAttribute("datetime");
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return;
    el.textContent = formatter.format(when);
    el.title = iso + " (UTC)";
  }

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function userCell(user) {
    const td = el("td");
    if (!user) {
      td.appendChild(el("span", "anonymous", { class: "anonymous" }));
      return td;
    }
    const name = user.username || (user.id !== null && user.id !== undefined ? "#" + user.id : "");
    td.appendChild(el("span", name, { class: "username" }));
    if (user.email) {
      td.appendChild(document.createTextNode(" "));
      td.appendChild(el("span", user.email, { class: "email" }));
    }
    return td;
  }

  function detailsCell(details, sealed) {
    const td = el("td");
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

  function row(entry) {
    const tr = el("tr", null, { "data-id": entry.id });
    const timeCell = el("td");
    const time = el("time", entry.ts, { datetime: entry.ts, title: entry.ts });
    showLocalTime(time);
    timeCell.appendChild(time);
    tr.appendChild(timeCell);
    if (showSources) tr.appendChild(el("td", entry.source, { class: "source" }));
    tr.appendChild(userCell(entry.user));
    const actionCell = el("td");
    actionCell.appendChild(el("code", entry.action, { title: catalog[entry.action] || "" }));
    tr.appendChild(actionCell);
    tr.appendChild(el("td", entry.resource || ""));
    tr.appendChild(el("td", entry.ip || ""));
    tr.appendChild(detailsCell(entry.details, entry.sealed === true));
    return tr;
  }

  document.querySelectorAll("#audit-rows time, #seal-panel time").forEach(showLocalTime);

  const more = document.getElementById("load-more");
  if (!more) return;
  more.addEventListener("click", async function (event) {
    event.preventDefault();
    if (more.getAttribute("aria-busy") === "true") return;
    more.setAttribute("aria-busy", "true");
    status.textContent = "Loading…";
    try {
      const url = new URL(table.dataset.api, window.location.href);
      url.searchParams.set("before", more.dataset.next);
      url.searchParams.set("limit", "100");
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("the server answered " + response.status);
      const page = await response.json();
      const fragment = document.createDocumentFragment();
      page.entries.forEach(function (entry) { fragment.appendChild(row(entry)); });
      rows.appendChild(fragment);
      status.textContent = "";
      if (page.next) {
        more.dataset.next = page.next;
        const link = new URL(more.href, window.location.href);
        link.searchParams.set("before", page.next);
        more.href = link.pathname + link.search;
      } else {
        more.remove();
        status.textContent = "All entries shown.";
      }
    } catch (error) {
      status.textContent = "Could not load more entries: " + error.message;
    } finally {
      more.removeAttribute("aria-busy");
    }
  });
})();
