/* The exam player: shows one question at a time, saves every answer to the server as
 * it is chosen, and keeps time by the server's clock.
 *
 * - The deadline comes from the server's remaining_seconds, anchored to this page's
 *   monotonic clock (performance.now), so a wrong computer clock changes nothing. Every
 *   acknowledged save re-anchors it; a page that has not saved for a minute asks for
 *   the attempt's clock (sleep, throttled tabs), so a candidate who keeps answering
 *   costs the server no clock reads.
 * - Each change gets a rising client_seq; unsaved changes wait in a queue mirrored to
 *   localStorage and are retried with backoff, so a network blip or a reload loses none.
 *   The next save that gets through reports how many tries failed, for the proctor's roster.
 * - The server never sends keys; this file only renders what the API gives it.
 * - In an adaptive section the server picks each next question from the answers so far:
 *   an answer is sent only when confirmed with Next, and once it is acknowledged the
 *   state is fetched again to show the question the server chose (earlier ones are final).
 * - A proctor may pause the attempt: the server then refuses saves (409 attempt_paused)
 *   and its clock stands still. The page covers the test, stops its countdown, keeps the
 *   refused answers queued, and asks for the state every 5 s until the proctor resumes.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("player-config").textContent);
  const strings = config.strings;
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const storageKey = "tc-pending-" + config.attemptId;
  const $ = (id) => document.getElementById(id);

  let items = [];            // flat list of items in form order, each with its section
  let stimuli = {};          // shared passages and conversations by key ("s1")
  let sections = [];         // every section with its status (open, waiting, break, finished)
  let currentCode = null;    // the section the clock is counting for
  let sectionPhase = null;   // its status: "open" or "break"
  let advancing = false;     // a time-up reload is under way
  let needsReload = false;   // a save found its section closed: fetch the state again
  let current = 0;           // index into items
  let lastSeq = 0;           // highest client_seq used or seen
  let failedTries = 0;       // tries that failed since the last acknowledged save (told to the proctor)
  let deadlinePerf = 0;      // performance.now() value at which time is up
  let anchoredAt = 0;        // performance.now() when the server last told the time
  let clockAskedAt = 0;      // performance.now() when the page last asked (answered or not)
  let pending = {};          // ref -> {response, flagged, seq}
  let flushPromise = null;   // the flush in progress, if any
  let blocked = false;       // signed out or page outdated: saving waits for a reload
  let finishing = false;     // no more changes once the candidate confirmed Finish
  let retryDelay = 1000;
  let retryTimer = null;
  let closed = false;
  let paused = false;        // paused by the proctor: nothing is sent, the clock stands still
  let pausedLeft = 0;        // the seconds shown while paused
  let pauseTimer = null;

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
  }

  function request(method, url, body) {
    const headers = { "Accept": "application/json", "X-CSRFToken": csrfToken };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  /* ---- clock ---------------------------------------------------------------- */

  const RESYNC_MS = 60000;   // the longest the page counts without the server's word

  function anchorClock(remainingSeconds, sentAt, receivedAt) {
    // The server measured remaining time somewhere between send and receive.
    deadlinePerf = (sentAt + receivedAt) / 2 + remainingSeconds * 1000;
    anchoredAt = receivedAt;
  }

  function tick() {
    // Rounded up, as the server does, so the page never closes before the server would.
    const left = paused ? pausedLeft : Math.max(0, Math.ceil((deadlinePerf - performance.now()) / 1000));
    const minutes = Math.floor(left / 60);
    const seconds = left % 60;
    $("timer").textContent = String(minutes).padStart(2, "0") + ":" + String(seconds).padStart(2, "0");
    $("timer").classList.toggle("low", left <= 60);
    if (left === 0 && !closed && !paused) timeUp();
  }

  /* The clock shows the current section's time (or the break). At zero the server has
   * moved on: a section ends and the next begins, or the whole test is over. */
  async function timeUp() {
    if (advancing) return;
    const position = sections.findIndex((section) => section.code === currentCode);
    const more = sections.slice(position + 1).some((section) => section.status !== "finished");
    if (sectionPhase !== "break" && !more) {
      await flush();  // anything the server still accepts, before it closes
      return endAttempt(strings.timeUp);
    }
    advancing = true;
    try {
      await flush();
      if (sectionPhase !== "break") showStatus(strings.sectionTimeUp, "saved");
      await reload();
    } finally {
      advancing = false;
    }
  }

  /* ---- state ---------------------------------------------------------------- */

  async function loadState() {
    const sentAt = performance.now();
    const response = config.preview ? null : await request("GET", config.stateUrl);
    const receivedAt = performance.now();
    if (response && !response.ok) throw new Error("state " + response.status);
    const state = config.preview || await response.json();
    if (state.status !== "in_progress") {
      window.location.href = config.resultUrl;
      return;
    }
    applyState(state, sentAt, receivedAt);
  }

  /* Take a state from the server: the clock, the sections, and the open sections' items. */
  function applyState(state, sentAt, receivedAt) {
    const current = state.current_section || {};
    sectionPhase = current.status;
    currentCode = current.code;
    sections = state.sections;
    if (sectionPhase === "break") {
      anchorClock(secondsUntil(current.break_until, state.server_time), sentAt, receivedAt);
    } else {
      anchorClock(state.remaining_seconds, sentAt, receivedAt);
    }
    stimuli = state.stimuli || {};
    items = [];
    for (const section of state.sections) {
      if (section.status !== "open") continue;
      for (const item of section.items) {
        items.push(Object.assign({ sectionTitle: section.title, section: section.code,
                                   adaptive: section.adaptive === true }, item));
        lastSeq = Math.max(lastSeq, item.client_seq);
      }
    }
    restorePending();
    if (state.paused) enterPause(); else if (paused) leavePause();
  }

  function secondsUntil(until, serverTime) {
    return Math.max(0, Math.ceil((Date.parse(until) - Date.parse(serverTime)) / 1000));
  }

  /* Ask the server for the state again and show it (after a section step or time-up). */
  async function reload() {
    const sentAt = performance.now();
    const response = await request("GET", config.stateUrl);
    const receivedAt = performance.now();
    if (!response.ok) return;
    const state = await response.json();
    if (leftIfOver(state)) return;
    applyState(state, sentAt, receivedAt);
    renderAll(0);
  }

  /* Close a section or end a break, once every answer is saved: a section closed with an
   * answer still on its way would lose it. */
  async function sectionStep(url) {
    finishing = true;
    let outcome = "done";
    while (Object.keys(pending).length > 0 && outcome === "done") outcome = await flush();
    if (outcome !== "done") {
      finishing = false;
      if (outcome !== "closed" && outcome !== "paused") showStatus(strings.finishFailed, "error");
      return;
    }
    const sentAt = performance.now();
    let response;
    try {
      response = await request("POST", url);
    } catch (networkError) {
      finishing = false;
      showStatus(strings.finishFailed, "error");
      return;
    }
    finishing = false;
    const receivedAt = performance.now();
    const state = await response.json().catch(() => ({}));
    if (!response.ok && state.error && state.error.code === "attempt_paused") {
      enterPause();
      checkPause();
      return;
    }
    if (!response.ok) {
      showStatus((state.error && state.error.message) || strings.finishFailed, "error");
      return;
    }
    if (leftIfOver(state)) return;
    applyState(state, sentAt, receivedAt);
    renderAll(0);
  }

  function restorePending() {
    // Changes not acknowledged before a reload are re-applied and sent again.
    if (config.preview) return;
    let stored = {};
    try { stored = JSON.parse(window.localStorage.getItem(storageKey) || "{}"); } catch (e) { stored = {}; }
    for (const [ref, entry] of Object.entries(stored)) {
      const item = items.find((candidate) => candidate.ref === ref);
      if (!item || entry.seq <= item.client_seq) continue;
      item.response = entry.response;
      item.flagged = entry.flagged;
      pending[ref] = entry;
      lastSeq = Math.max(lastSeq, entry.seq);
    }
    persistPending();
  }

  function persistPending() {
    try { window.localStorage.setItem(storageKey, JSON.stringify(pending)); } catch (e) { /* private mode */ }
  }

  /* ---- saving --------------------------------------------------------------- */

  function showStatus(text, kind) {
    const element = $("save-status");
    element.textContent = text;
    element.dataset.kind = kind;
  }

  function queueSave(item) {
    if (config.preview) return;  // authors try the item; nothing is stored
    lastSeq += 1;
    pending[item.ref] = { response: item.response, flagged: item.flagged, seq: lastSeq };
    persistPending();
    showStatus(strings.saving, "saving");
    flush();
  }

  /* One flush at a time; callers may await the one in progress. */
  function flush() {
    if (!flushPromise) {
      flushPromise = sendPending().finally(() => { flushPromise = null; });
    }
    return flushPromise;
  }

  /* Send every pending change once. Returns "done", "retry" (network or server trouble,
   * retried with backoff), "blocked" (signed out or stale page: kept for after a reload)
   * or "closed" (the attempt ended), or "paused" (kept until the proctor resumes). */
  async function sendPending() {
    if (closed || blocked) return closed ? "closed" : "blocked";
    if (paused) return "paused";  // kept in the queue; sent once the proctor resumes
    window.clearTimeout(retryTimer);
    let rejected = false;   // a refused answer keeps its message on screen
    for (const [ref, entry] of Object.entries(pending)) {
      const url = config.responseUrl.replace("__REF__", encodeURIComponent(ref));
      let response;
      const sentAt = performance.now();
      try {
        response = await request("PUT", url, {
          response: entry.response, client_seq: entry.seq, flagged: entry.flagged,
          retries: failedTries,
        });
      } catch (networkError) {
        return scheduleRetry();
      }
      const receivedAt = performance.now();
      if (response.status >= 500 || response.status === 429) return scheduleRetry();
      const body = await response.json().catch(() => ({}));
      const message = (body.error && body.error.message) || String(response.status);
      if (response.ok) {
        failedTries = 0;  // the server has counted them
        acknowledge(ref, entry, body);
        keepTimeBy(body, sentAt, receivedAt);
      } else if (response.status === 409 && body.error && body.error.code === "attempt_closed") {
        endAttempt(message);
        return "closed";
      } else if (response.status === 409 && body.error && body.error.code === "attempt_paused") {
        enterPause();     // this answer and the rest stay queued (and in localStorage)
        checkPause();     // read the clock as the server froze it
        return "paused";
      } else if (response.status === 409) {
        // Its section closed (time up or finished): this answer cannot be saved any more,
        // the others can. Show why and fetch where the test is now.
        if (pending[ref] === entry) delete pending[ref];
        rejected = true;
        showStatus(message, "error");
        persistPending();
        needsReload = true;
        continue;
      } else if (response.status === 401 || response.status === 403) {
        blocked = true;   // answers stay in localStorage and are sent after a reload
        showStatus(format(strings.blocked, { reason: message }), "error");
        return "blocked";
      } else {
        if (pending[ref] === entry) delete pending[ref];
        rejected = true;
        showStatus(format(strings.rejected, { reason: message }), "error");
      }
      persistPending();
    }
    retryDelay = 1000;
    if (needsReload) {
      needsReload = false;
      reload();
    }
    if (Object.keys(pending).length > 0) return sendPending();
    if (!rejected) showStatus(strings.saved, "saved");
    return "done";
  }

  /* Take the server's word for what is stored; a newer save from elsewhere wins. */
  function acknowledge(ref, entry, body) {
    if (pending[ref] === entry || (pending[ref] && pending[ref].seq <= body.client_seq)) {
      delete pending[ref];
    }
    lastSeq = Math.max(lastSeq, body.client_seq);
    const item = items.find((candidate) => candidate.ref === ref);
    if (!item) return;
    item.client_seq = body.client_seq;
    // Adaptive: the server has chosen the next question (or ended the section).
    if (item.adaptive && body.accepted && body.response !== null) needsReload = true;
    if (!body.accepted && !pending[ref]) {
      item.response = body.response;
      item.flagged = body.flagged;
      if (items[current] === item) renderQuestion();
      renderGrid();
      showStatus(strings.replaced, "error");
    }
  }

  function scheduleRetry() {
    failedTries += 1;
    showStatus(strings.retrying, "error");
    retryTimer = window.setTimeout(flush, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
    return "retry";
  }

  /* ---- paused by the proctor ------------------------------------------------ */

  /* Cover the test and stop the clock; queued answers wait (they are in localStorage
   * too). Safe to call again: it only refreshes the seconds shown. */
  function enterPause() {
    pausedLeft = Math.max(0, Math.ceil((deadlinePerf - performance.now()) / 1000));
    if (!paused) {
      paused = true;
      window.clearTimeout(retryTimer);
      for (const dialog of [$("finish-dialog"), $("finish-section-dialog")]) {
        if (dialog.open) dialog.close("cancel");
      }
      $("pause-overlay").hidden = false;
      showStatus(strings.pausedStatus, "saving");
      pauseTimer = window.setInterval(checkPause, 5000);
    }
    tick();
  }

  /* The proctor resumed: uncover the test and send what was kept. */
  function leavePause() {
    paused = false;
    window.clearInterval(pauseTimer);
    pauseTimer = null;
    $("pause-overlay").hidden = true;
    retryDelay = 1000;
    window.setTimeout(flush, 0);
  }

  /* Ask the server whether the pause is over (and for the clock as it froze it). */
  async function checkPause() {
    if (closed) return;
    const sentAt = performance.now();
    let response;
    try {
      response = await request("GET", config.stateUrl);
    } catch (networkError) {
      return;  // offline: ask again in 5 s
    }
    const receivedAt = performance.now();
    if (!response.ok) return;
    const state = await response.json();
    if (leftIfOver(state)) return;
    const wasPaused = paused;
    applyState(state, sentAt, receivedAt);  // re-anchors the clock; leaves the pause if over
    if (wasPaused && !paused) renderAll(current);
  }

  function endAttempt(message) {
    closed = true;
    pending = {};
    window.localStorage.removeItem(storageKey);
    showStatus(message || strings.closed, "error");
    window.setTimeout(() => { window.location.href = config.resultUrl; }, 1500);
  }

  /* ---- rendering ------------------------------------------------------------ */

  function renderGrid() {
    const grid = $("question-grid");
    grid.replaceChildren();
    if (items.some((item) => item.adaptive)) return;  // one question at a time, no going back
    items.forEach((item, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = String(index + 1);
      button.className = "cell" + (item.response !== null ? " answered" : "") +
        (item.flagged ? " flagged" : "") + (index === current ? " current" : "");
      const status = [item.response !== null ? strings.answered : strings.notAnswered];
      if (item.flagged) status.push(strings.flagged);
      button.setAttribute("aria-label", String(index + 1) + ": " + status.join(", "));
      if (index === current) button.setAttribute("aria-current", "step");
      button.addEventListener("click", () => show(index));
      grid.appendChild(button);
    });
  }

  function renderQuestion() {
    const item = items[current];
    $("section-name").textContent = item.sectionTitle;
    const section = sections.find((candidate) => candidate.code === item.section) || {};
    $("question-number").textContent = item.adaptive
      ? format(strings.question, { n: section.item_count, total: section.max_items })
      : format(strings.question, { n: current + 1, total: items.length });
    renderStimulus(item.stimulus ? stimuli[item.stimulus] : null);
    renderAudio($("item-audio"), item.audio, item.ref);
    $("stem").innerHTML = item.stem;  // sanitised on the server when the item was imported
    const area = $("answer-area");
    area.replaceChildren();
    area.dataset.type = item.type;
    (RENDERERS[item.type] || renderUnsupported)(item, area);
    $("flag").checked = item.flagged;
    $("prev").disabled = current === 0 || item.adaptive;
    $("next").disabled = item.adaptive
      ? item.response === null || Boolean(pending[item.ref])
      : current === items.length - 1;
  }

  function element(tag, properties, children) {
    const node = Object.assign(document.createElement(tag), properties || {});
    for (const child of children || []) node.append(child);
    return node;
  }

  function html(tag, markup, className) {
    // Item markup was sanitised on the server when the item was imported.
    const node = element(tag, { className: className || "" });
    node.lang = "ja";
    node.innerHTML = markup;
    return node;
  }

  function choiceRow(kind, name, option, index, checked, onChange) {
    const input = element("input", { type: kind, name, value: option.id, checked });
    input.addEventListener("change", () => onChange(input));
    const number = String(index + 1);
    const row = element("label", { className: "option" }, [input]);
    // Spoken choices are labelled by their number alone; do not show it twice.
    if (option.html.trim() !== number) {
      row.append(element("span", { className: "option-number", textContent: number }));
    }
    row.append(html("span", option.html));
    return row;
  }

  const RENDERERS = {
    single_choice(item, area) {
      item.options.forEach((option, index) => area.append(choiceRow(
        "radio", "answer", option, index, item.response === option.id, () => answer(option.id))));
    },
    multiple_response(item, area) {
      const chosen = new Set(item.response || []);
      item.options.forEach((option, index) => area.append(choiceRow(
        "checkbox", "answer-" + option.id, option, index, chosen.has(option.id), () => toggleChoice(option.id))));
    },
    true_false(item, area) {
      [[true, strings.trueLabel, "○"], [false, strings.falseLabel, "×"]].forEach(([value, label, mark], index) => {
        area.append(choiceRow("radio", "answer", { id: String(value), html: "" }, index,
                              item.response === value, () => answer(value)));
        area.lastChild.lastChild.textContent = mark + " " + label;
      });
    },
    ordering(item, area) {
      const order = item.response || item.options.map((option) => option.id);
      const byId = Object.fromEntries(item.options.map((option) => [option.id, option]));
      const list = element("ol", { className: "ordering" });
      order.forEach((id, index) => {
        const star = item.star_position === index + 1;
        const up = element("button", { type: "button", textContent: "↑", disabled: index === 0,
                                       title: strings.moveUp });
        const down = element("button", { type: "button", textContent: "↓",
                                         disabled: index === order.length - 1, title: strings.moveDown });
        up.setAttribute("aria-label", strings.moveUp);
        down.setAttribute("aria-label", strings.moveDown);
        up.addEventListener("click", () => move(order, index, -1));
        down.addEventListener("click", () => move(order, index, 1));
        list.append(element("li", { className: star ? "slot star" : "slot" }, [
          element("span", { className: "slot-mark", textContent: star ? "★" : String(index + 1) }),
          html("span", byId[id].html, "fragment"), up, down]));
      });
      area.append(list);
      if (item.response === null) area.append(element("p", { className: "hint", textContent: strings.orderHint }));
    },
    text_entry(item, area) {
      const input = element("input", { type: "text", id: "text-answer", maxLength: item.max_length,
                                       value: item.response || "", autocomplete: "off" });
      input.lang = "ja";
      input.setAttribute("aria-label", strings.typeAnswer);
      input.placeholder = strings.typeAnswer;
      let timer = null;
      const commit = () => { window.clearTimeout(timer); answer(input.value.trim() ? input.value : null, false); };
      input.addEventListener("input", () => { window.clearTimeout(timer); timer = window.setTimeout(commit, 700); });
      input.addEventListener("change", commit);
      area.append(input);
    },
    matching(item, area) {
      const pairs = Object.assign({}, item.response || {});
      const table = element("div", { className: "matching" });
      item.prompts.forEach((prompt) => {
        const select = element("select", {}, [element("option", { value: "", textContent: strings.choose })]);
        item.choices.forEach((choice, index) => {
          const text = element("div");
          text.innerHTML = choice.html;  // sanitised on import; options cannot hold markup
          select.append(element("option", { value: choice.id, textContent: (index + 1) + ". " + text.textContent,
                                             selected: pairs[prompt.id] === choice.id }));
        });
        select.addEventListener("change", () => {
          if (select.value) pairs[prompt.id] = select.value; else delete pairs[prompt.id];
          answer(Object.keys(pairs).length ? Object.assign({}, pairs) : null);
        });
        table.append(element("label", { className: "pair" }, [html("span", prompt.html, "prompt"), select]));
      });
      area.append(table);
    },
  };

  function renderUnsupported(item, area) {
    area.append(element("p", { className: "hint", textContent: strings.unsupported }));
  }

  function renderStimulus(stimulus) {
    const panel = $("stimulus");
    panel.hidden = !stimulus;
    if (!stimulus) return;
    panel.replaceChildren();
    renderAudio(panel.appendChild(element("div", { className: "audio" })), stimulus.audio, stimulus.id);
    if (stimulus.html) panel.append(html("div", stimulus.html, "stimulus-text"));
  }

  /* ---- audio: plays are counted by the server before the recording is sent ------- */

  function renderAudio(container, audio, source) {
    container.replaceChildren();
    container.hidden = !audio;
    if (!audio) return;
    const left = audio.play_limit - audio.plays_used;
    const button = element("button", { type: "button", className: "play",
                                       textContent: "▶ " + strings.play, disabled: left <= 0 || closed });
    const info = element("span", { className: "plays-left",
                                   textContent: left > 0 ? format(strings.playsLeft, { n: left }) : strings.noPlaysLeft });
    button.addEventListener("click", () => play(audio, source, button, info));
    container.append(button, info);
  }

  /* The server counts the play (refusing it past the limit) and says where to fetch it. */
  async function requestGrant(source) {
    const response = await request("POST", config.playUrl.replace("__SOURCE__", encodeURIComponent(source)));
    const body = await response.json();
    if (!response.ok) throw new Error((body.error && body.error.message) || response.status);
    return body;
  }

  async function play(audio, source, button, info) {
    button.disabled = true;
    let grant;
    try {
      grant = audio.url  // preview: the author's own copy, counted only on this page
        ? { url: audio.url, play_limit: audio.play_limit, plays_used: audio.plays_used + 1 }
        : await requestGrant(source);
    } catch (error) {
      info.textContent = format(strings.playFailed, { reason: error.message });
      button.disabled = audio.plays_used >= audio.play_limit;
      return;
    }
    audio.plays_used = grant.plays_used;
    const left = grant.play_limit - grant.plays_used;
    info.textContent = strings.playing;
    const player = new Audio(grant.url);
    player.addEventListener("ended", () => {
      info.textContent = left > 0 ? format(strings.playsLeft, { n: left }) : strings.noPlaysLeft;
      button.disabled = left <= 0;
    });
    player.play().catch((error) => { info.textContent = format(strings.playFailed, { reason: error.message }); });
  }

  function renderAll(index) {
    renderTabs();
    const onBreak = sectionPhase === "break";
    $("break-screen").hidden = !onBreak;
    $("question").hidden = onBreak || !items.length;
    $("question-grid").hidden = onBreak || config.preview;
    $("finish-section").hidden = onBreak || config.preview || !items.length || sections.length < 2;
    if (onBreak) {
      const next = sections.find((section) => section.code === currentCode);
      $("break-next").textContent = next ? next.title : "";
      $("section-name").textContent = strings.breakTitle;
      $("question-number").textContent = "";
      return;
    }
    if (items.length) show(index);
  }

  function renderTabs() {
    const tabs = $("section-tabs");
    tabs.replaceChildren();
    tabs.hidden = config.preview || sections.length < 2;
    for (const section of sections) {
      const first = items.findIndex((item) => item.section === section.code);
      const tab = element("button", { type: "button", className: "tab " + section.status,
                                      textContent: section.title, disabled: first < 0 });
      if (section.code === (items[current] || {}).section) tab.setAttribute("aria-current", "true");
      tab.title = strings["section_" + section.status] || section.status;
      tab.addEventListener("click", () => show(first));
      tabs.append(tab);
    }
  }

  function openFinishSectionDialog() {
    const code = (items[current] || {}).section;
    $("finish-section-summary").textContent = unansweredSummary(code);
    $("finish-section-dialog").dataset.section = code;
    $("finish-section-dialog").showModal();
  }

  function show(index) {
    current = Math.max(0, Math.min(items.length - 1, index));
    renderQuestion();
    renderGrid();
    renderTabs();
  }

  /* Record the current item's answer (null when cleared) and save it. */
  function answer(value, rerender = true) {
    if (closed || finishing || paused) return;
    const item = items[current];
    item.response = value;
    if (rerender) renderQuestion();
    renderGrid();
    if (item.adaptive) {  // sent when confirmed with Next
      $("next").disabled = value === null;
      return;
    }
    queueSave(item);
  }

  /* Next: the following question, or in an adaptive section, send the answer. */
  function next() {
    const item = items[current];
    if (!item || !item.adaptive) return show(current + 1);
    if (item.response === null || closed || finishing || paused || pending[item.ref]) return;
    $("next").disabled = true;
    queueSave(item);
  }

  function chooseByNumber(item, number) {
    const option = (item.options || [])[number - 1];
    if (item.type === "single_choice" && option) answer(option.id);
    else if (item.type === "multiple_response" && option) toggleChoice(option.id);
    else if (item.type === "true_false" && number <= 2) answer(number === 1);
  }

  function toggleChoice(optionId) {
    const chosen = new Set(items[current].response || []);
    if (chosen.has(optionId)) chosen.delete(optionId); else chosen.add(optionId);
    const ordered = items[current].options.map((o) => o.id).filter((id) => chosen.has(id));
    answer(ordered.length ? ordered : null);
  }

  function move(order, index, step) {
    const next = order.slice();
    [next[index], next[index + step]] = [next[index + step], next[index]];
    answer(next);
  }

  function toggleFlag(value) {
    if (closed || finishing || paused) return;
    const item = items[current];
    item.flagged = value;
    renderGrid();
    if (!item.adaptive) queueSave(item);  // adaptive: sent with the answer
  }

  /* Text size for the question area, remembered on this computer. */
  function zoom(step) {
    const stored = Number(window.localStorage.getItem("tc-zoom")) || 1;
    const size = Math.min(1.8, Math.max(0.8, Math.round((stored + step) * 10) / 10));
    try { window.localStorage.setItem("tc-zoom", String(size)); } catch (e) { /* private mode */ }
    $("question").style.setProperty("--zoom", String(size));
  }

  /* ---- finishing ------------------------------------------------------------ */

  /* Which questions (by their number on screen) are still unanswered. */
  function unansweredSummary(inSection) {
    const numbers = items
      .map((item, index) => ({ item, number: index + 1 }))
      .filter(({ item }) => item.response === null && (!inSection || item.section === inSection))
      .map(({ number }) => number);
    if (!numbers.length) return strings.allAnswered;
    return format(strings.unanswered, { n: numbers.length }) + " " +
      format(strings.unansweredList, { list: numbers.join(", ") });
  }

  function openFinishDialog() {
    const waiting = sections.filter((section) =>
      section.status === "waiting" || section.status === "break").length;
    $("finish-summary").textContent = unansweredSummary(null) +
      (waiting ? " " + format(strings.laterSections, { n: waiting }) : "");
    $("finish-dialog").showModal();
  }

  /* Finish only once every change is acknowledged: an answer still on its way would
   * otherwise be missing from the score. */
  async function finish() {
    finishing = true;
    let outcome = "done";
    while (Object.keys(pending).length > 0 && outcome === "done") outcome = await flush();
    if (outcome === "closed") return;
    if (outcome === "paused") { finishing = false; return; }
    if (outcome !== "done") {
      finishing = false;
      showStatus(strings.finishFailed, "error");
      return;
    }
    let response;
    try {
      response = await request("POST", config.finishUrl);
    } catch (networkError) {
      response = null;
    }
    const body = response && response.status === 409
      ? await response.clone().json().catch(() => ({})) : {};
    if (body.error && body.error.code === "attempt_paused") {
      finishing = false;
      enterPause();
      checkPause();
    } else if (response && (response.ok || response.status === 409 || response.status === 404)) {
      closed = true;
      window.localStorage.removeItem(storageKey);
      window.location.href = config.resultUrl;
    } else {
      finishing = false;
      showStatus(strings.finishFailed, "error");
    }
  }

  /* ---- wiring --------------------------------------------------------------- */

  function bindControls() {
    $("prev").addEventListener("click", () => show(current - 1));
    $("next").addEventListener("click", next);
    $("flag").addEventListener("change", (event) => toggleFlag(event.target.checked));
    $("finish").addEventListener("click", openFinishDialog);
    $("finish-section").addEventListener("click", openFinishSectionDialog);
    $("finish-section-dialog").addEventListener("close", () => {
      const dialog = $("finish-section-dialog");
      if (dialog.returnValue === "confirm") {
        sectionStep(config.sectionUrl.replace("__SECTION__", dialog.dataset.section) + "/finish");
      }
    });
    $("break-start").addEventListener("click", () =>
      sectionStep(config.sectionUrl.replace("__SECTION__", currentCode) + "/start"));
    $("zoom-in").addEventListener("click", () => zoom(0.1));
    $("zoom-out").addEventListener("click", () => zoom(-0.1));
    zoom(0);
    $("finish-dialog").addEventListener("close", () => {
      if ($("finish-dialog").returnValue === "confirm") finish();
    });
    document.addEventListener("keydown", (event) => {
      if (paused || event.altKey || event.ctrlKey || event.metaKey || $("finish-dialog").open ||
          $("finish-section-dialog").open || sectionPhase === "break") return;
      if (event.target instanceof HTMLSelectElement) return;
      if (event.target instanceof HTMLInputElement && event.target.type !== "radio" &&
          event.target.type !== "checkbox") return;
      // event.code names the physical key, so shortcuts work with Cyrillic or kana layouts.
      const digit = /^(?:Digit|Numpad)([1-5])$/.exec(event.code);
      const item = items[current];
      if (digit && item) {
        chooseByNumber(item, Number(digit[1]));
      } else if (event.code === "KeyN") {
        next();
      } else if (event.code === "KeyP") {
        show(current - 1);
      } else if (event.code === "KeyF") {
        $("flag").checked = !items[current].flagged;
        toggleFlag($("flag").checked);
      }
    });
    window.addEventListener("online", flush);
    window.addEventListener("beforeunload", (event) => {
      if (Object.keys(pending).length > 0 && !closed) event.preventDefault();
    });
  }

  /* An acknowledged save says how long its section has left, which is what the clock
   * would say: sections with their own clocks are open one at a time, and sections
   * open together share the attempt's clock. (A save is refused while paused.) */
  function keepTimeBy(ack, sentAt, receivedAt) {
    const section = sections.find((candidate) => candidate.code === ack.section_code);
    if (paused || sectionPhase !== "open" || !section || section.status !== "open") return;
    anchorClock(ack.remaining_seconds, sentAt, receivedAt);
  }

  async function resync() {
    // Re-anchor the countdown to the server once a minute has passed without its word
    // (no save acknowledged: sleep, throttled tabs, a candidate thinking), from the
    // attempt's clock alone; the whole state only when the section or the pause
    // changed. While paused, checkPause asks every 5 s instead.
    if (closed || paused) return;
    if (performance.now() - Math.max(anchoredAt, clockAskedAt) < RESYNC_MS) return;
    clockAskedAt = performance.now();
    try {
      const clock = await fetchAnchored(config.clockUrl);
      if (!clock) return;
      if (leftIfOver(clock.body)) return;
      const section = clock.body.current_section;
      if (!clock.body.paused && section.code === currentCode && section.status === sectionPhase) {
        anchorClock(sectionPhase === "break"
          ? secondsUntil(section.break_until, clock.body.server_time)
          : clock.body.remaining_seconds, clock.sentAt, clock.receivedAt);
        return;
      }
      const state = await fetchAnchored(config.stateUrl);
      if (!state) return;
      if (leftIfOver(state.body)) return;
      applyState(state.body, state.sentAt, state.receivedAt);
      if (!state.body.paused) renderAll(0);  // paused: the cover stays until the proctor resumes
    } catch (e) { /* offline: keep counting on the local anchor */ }
  }

  /* Once the attempt is over, go to its result; whether it is. */
  function leftIfOver(answer) {
    if (answer.status === "in_progress") return false;
    closed = true;
    window.location.href = config.resultUrl;
    return true;
  }

  /* GET a JSON answer with the moments it was asked for and came (null if refused). */
  async function fetchAnchored(url) {
    const sentAt = performance.now();
    const response = await request("GET", url);
    const receivedAt = performance.now();
    if (!response.ok) return null;
    return { body: await response.json(), sentAt, receivedAt };
  }

  async function start() {
    try {
      await loadState();
    } catch (error) {
      showStatus(strings.loadFailed, "error");
      return;
    }
    bindControls();
    renderAll(0);
    $("player").dataset.state = "ready";
    if (config.preview) return;
    if (!paused) {
      showStatus(Object.keys(pending).length ? strings.saving : strings.saved,
                 Object.keys(pending).length ? "saving" : "saved");
    }
    tick();
    window.setInterval(tick, 250);
    window.setInterval(resync, 5000);
    flush();
  }

  start();
})();
