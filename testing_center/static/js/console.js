/* The proctor console's live roster: every 10 s it reads GET /api/v1/sessions/{id}/roster
 * with the page's cookie session (a GET needs no CSRF header) and redraws the table.
 *
 * - The server renders the first table; this file only replaces its rows, so the page
 *   works (without refreshing) when scripts are off.
 * - Actions stay server-side forms on each candidate's page: the roster only links there.
 * - Times are shown in the centre's time zone; the remaining time is counted down
 *   between two reads for running (not paused) attempts.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("console-config").textContent);
  const strings = config.strings;
  const body = document.getElementById("roster-body");
  const updated = document.getElementById("roster-updated");
  const clockFormat = new Intl.DateTimeFormat(undefined, {
    timeZone: config.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  let rows = [];
  let timeCells = [];        // [cell, row]: the remaining time, counted down each second
  let readAt = performance.now();

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const total = Math.max(0, Math.round(seconds));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const secs = total % 60;
    const mm = String(minutes).padStart(2, "0") + ":" + String(secs).padStart(2, "0");
    return hours ? hours + ":" + mm : mm;
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    return td;
  }

  /* Saves the candidate's page had to retry: a seat whose network is failing. */
  function retries(row) {
    const td = cell(row.save_retries ? format(strings.retries, {
      count: row.save_retries, time: clockFormat.format(new Date(row.save_trouble_at)),
    }) : "");
    td.className = "save-retries";
    return td;
  }

  function remaining(row) {
    if (row.remaining_seconds === null) return null;
    if (row.status !== "in_progress") return row.remaining_seconds;
    return row.remaining_seconds - (performance.now() - readAt) / 1000;
  }

  function render() {
    body.replaceChildren();
    timeCells = [];
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell(strings.empty);
      td.colSpan = 10;
      tr.append(td);
      body.append(tr);
      return;
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.dataset.booking = row.booking_id;
      tr.dataset.status = row.status;
      let status = strings.statuses[row.status] || row.status;
      if (row.pending_extensions && row.pending_extensions.length) status += " · " + strings.pending;
      const actions = document.createElement("td");
      if (row.attempt_id) {
        const link = document.createElement("a");
        link.href = config.attemptUrl.replace("__ID__", encodeURIComponent(row.attempt_id));
        link.textContent = strings.actions;
        actions.append(link);
      }
      const left = cell(duration(remaining(row)));
      timeCells.push([left, row]);
      tr.append(
        cell(row.seat),
        cell(row.admission_number),
        cell(row.full_name),
        cell(status),
        cell(row.section),
        cell(row.attempt_id ? row.answered + " / " + row.items : ""),
        left,
        cell(row.last_activity_at ? clockFormat.format(new Date(row.last_activity_at)) : ""),
        retries(row),
        actions,
      );
      body.append(tr);
    }
  }

  async function refresh() {
    try {
      const response = await fetch(config.rosterUrl, {
        headers: { "Accept": "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      rows = await response.json();
      readAt = performance.now();
      render();
      updated.textContent = format(strings.updated, { time: clockFormat.format(new Date()) });
    } catch (error) {
      updated.textContent = strings.failed;
    }
  }

  refresh();
  window.setInterval(refresh, 10000);
  window.setInterval(() => {
    for (const [td, row] of timeCells) td.textContent = duration(remaining(row));
  }, 1000);
})();
