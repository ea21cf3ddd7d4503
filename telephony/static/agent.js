// The agent console: polls live calls every second and sends Warn / End presses and wrap-up
// notes. Everything the caller controls is written with textContent (or an attribute), never as
// HTML. The live region (#announcer) says only what matters: a call arriving or ending, being put
// through, how a press went; never each poll. It can be paused.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const list = document.getElementById("calls");
  const empty = document.getElementById("no-calls");
  const status = document.getElementById("status");
  const announcer = document.getElementById("announcer");
  const pause = document.getElementById("announcements");
  const simulate = document.getElementById("simulate");
  const showAll = document.getElementById("show-all");
  const template = document.getElementById("call-card");
  const cards = new Map();
  let firstLoad = true;
  let failing = false;
  let paused = false;

  function announce(text) {
    if (paused || !text) return;
    // the same words twice are still announced: clear, then write
    announcer.textContent = "";
    setTimeout(() => { announcer.textContent = text; }, 50);
  }

  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume announcements" : "Pause announcements";
    if (paused) announcer.textContent = "";
  });

  // Who the call is with, for the buttons' accessible names: "Pat Example (+447400100001)".
  function callerOf(call) {
    const name = call.customer ? call.customer.name : (call.caller_name || "an unidentified caller");
    return name + " (" + call.from + ")";
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await response.json(); } catch (error) { data = {}; }
    return {ok: response.ok, data: data};
  }

  async function press(call, kind, reason) {
    const card = cards.get(call.call_sid);
    const outcome = card.querySelector(".outcome");
    outcome.textContent = kind === "warn" ? "Playing the warning…" : "Ending the call…";
    let result;
    try {
      result = await post(
        "/agent/calls/" + encodeURIComponent(call.call_sid) + "/" + kind,
        reason ? {reason: reason} : {},
      );
    } catch (error) {
      result = {ok: false, data: {error: "Could not reach callguard: try again."}};
    }
    const data = result.data;
    if (!result.ok) {
      outcome.textContent = data.error || "Something went wrong";
      announce((kind === "warn" ? "Warning failed: " : "End failed: ") + outcome.textContent);
      return false;
    }
    if (kind === "warn") {
      // Twilio says later whether it played: the next polls bring its word
      card._warning = data.outcome;
      if (data.outcome === "ok") {
        // Twilio said it played before the answer came back: End needs no reason from now on,
        // not only once a poll says so (a poll read before it would say it had not played)
        card._warnedOk = true;
        card._call.warned = true;
        const end = card.querySelector(".end");
        end.textContent = "End call";
        end.setAttribute("aria-label", "End call: " + callerOf(card._call));
      }
      outcome.textContent = WARNING_WORDS[data.outcome] || "";
      announce(ANNOUNCED_WARNING[data.outcome] ? ANNOUNCED_WARNING[data.outcome] + " " + callerOf(call) : "");
    } else {
      // what happened beyond the end (the caller had already gone, say) follows, never replaces it
      outcome.textContent = "Call ended." + (data.detail ? " Note: " + data.detail + "." : "");
      card._endedByMe = true;
      announce("Call with " + callerOf(call) + " ended.");
    }
    return true;
  }

  const WARNING_WORDS = {
    pending: "Warning sent: waiting for Twilio to say it has played…",
    ok: "Warning played. The call continues.",
    failed: "The warning did not play. Ending the call now needs a reason.",
  };
  const ANNOUNCED_WARNING = {
    pending: "Warning sent to",
    ok: "Warning played to",
    failed: "The warning did not play to",
  };

  // --- dialogs: the Warn confirmation and the End reason; Escape closes whichever is open ----

  function openDialog(card, dialog, focus) {
    closeDialogs(card, false);
    dialog.hidden = false;
    card._opener = document.activeElement;
    focus.focus();
  }

  function closeDialogs(card, restoreFocus) {
    let closed = false;
    for (const dialog of card.querySelectorAll('[role="dialog"]')) {
      if (!dialog.hidden) { dialog.hidden = true; closed = true; }
    }
    if (closed && restoreFocus && card._opener && card.contains(card._opener)) card._opener.focus();
    return closed;
  }

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const inCard = event.target.closest ? event.target.closest("section.call") : null;
    const targets = inCard ? [inCard] : [...cards.values()];
    for (const card of targets) {
      if (closeDialogs(card, true)) event.preventDefault();
    }
  });

  function build(call) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.callSid = call.call_sid;
    const heading = card.querySelector(".caller");
    heading.id = "caller-" + call.call_sid;
    card.setAttribute("aria-labelledby", heading.id);
    const form = card.querySelector(".end-form");
    const confirm = card.querySelector(".warn-confirm");
    card.querySelector(".warn").addEventListener("click", () => {
      openDialog(card, confirm, confirm.querySelector(".warn-send"));
    });
    confirm.querySelector(".warn-send").addEventListener("click", () => {
      confirm.hidden = true;
      card.querySelector(".warn").focus();
      press(card._call, "warn");
    });
    confirm.querySelector(".warn-cancel").addEventListener("click", () => {
      closeDialogs(card, true);
      card.querySelector(".outcome").textContent = "Warning not sent.";
    });
    card.querySelector(".end").addEventListener("click", () => {
      if (card._call.warned) {
        press(card._call, "end");
      } else {
        openDialog(card, form, form.querySelector("textarea"));
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const reason = form.querySelector("textarea").value.trim();
      if (!reason) {
        card.querySelector(".outcome").textContent = "Give a reason: no warning was given on this call.";
        return;
      }
      if (await press(card._call, "end", reason)) form.hidden = true;
    });
    form.querySelector(".cancel").addEventListener("click", () => closeDialogs(card, true));
    const wrapUp = card.querySelector(".wrap-up-form");
    wrapUp.addEventListener("submit", async (event) => {
      event.preventDefault();
      const outcome = card.querySelector(".outcome");
      const note = wrapUp.querySelector("textarea").value.trim();
      if (!note) {
        outcome.textContent = "Write the note first.";
        return;
      }
      let result;
      try {
        result = await post("/agent/calls/" + encodeURIComponent(card._call.call_sid) + "/wrap-up", {note: note});
      } catch (error) {
        result = {ok: false, data: {error: "Could not reach callguard: try again."}};
      }
      outcome.textContent = result.ok ? "Wrap-up note saved." : (result.data.error || "The note was not saved.");
      announce(result.ok ? "Wrap-up note saved." : "Wrap-up note not saved: " + outcome.textContent);
    });
    return card;
  }

  function items(ul, texts) {
    ul.replaceChildren(...texts.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
    ul.hidden = texts.length === 0;
  }

  // A restriction in words, from the server's words: its label, then its own terms.
  function restrictionText(r) {
    const own = r.terms.find((t) => t.startsWith(r.label + ":"));
    const rest = r.terms.filter((t) => t !== own);
    return (own || r.label) + (rest.length ? ": " + rest.join("; ") : "") +
      (r.in_force ? "" : " (not in force yet: awaiting notice)");
  }

  function render(call) {
    let card = cards.get(call.call_sid);
    const arrived = !card;
    if (!card) {
      card = build(call);
      cards.set(call.call_sid, card);
      list.appendChild(card);
    }
    const before = card._call;
    card._call = call;
    const who = callerOf(call);
    card.querySelector(".caller").textContent =
      call.customer ? call.customer.name + " (" + call.customer.reference + ")" : call.from;
    card.querySelector(".simulated").hidden = !call.simulated;
    const link = card.querySelector("a.customer");
    card.querySelector(".customer-link").hidden = !call.customer;
    if (call.customer) {
      link.href = "/agent/customers/" + encodeURIComponent(call.customer.reference);
      link.textContent = "Customer record: " + call.customer.name + " (opens in a new tab)";
    }
    const since = new Date(call.since || call.started).toLocaleTimeString("en-GB");
    card.querySelector(".meta").textContent =
      call.from + " · since " + since + " · " + (call.agent || "contact centre") +
      (call.spoc_name ? " · single point of contact: " + call.spoc_name : "");
    // The words come from the server (each kind's declaration), never from a table here.
    items(card.querySelector(".flags"), call.flag_texts);
    items(card.querySelector(".restrictions"), call.restrictions.map(restrictionText));
    // the reasonable adjustments in words (the language first, by its name)
    items(card.querySelector(".adjustments"), call.customer ? call.customer.adjustment_texts : []);
    if (card._warnedOk) call.warned = true;  // its own Warn's answer said it played
    const end = card.querySelector(".end");
    end.textContent = call.warned ? "End call" : "End call (reason needed)";
    // every control names its caller for assistive technology (the visible words first)
    end.setAttribute("aria-label", end.textContent + ": " + who);
    card.querySelector(".warn").setAttribute("aria-label", "Warn " + who);
    card.querySelector(".warn-question").textContent =
      "Play the scripted warning to " + who + "? Both of you will hear it.";
    card.querySelector(".warn-send").setAttribute("aria-label", "Play the warning to " + who);
    card.querySelector(".warn-cancel").setAttribute("aria-label", "Cancel: do not warn " + who);
    card.querySelector(".warn-confirm").setAttribute("aria-label", "Warn " + who + "?");
    const form = card.querySelector(".end-form");
    form.setAttribute("aria-label", "End the call with " + who);
    form.querySelector('button[type="submit"]').setAttribute("aria-label", "Confirm end: " + who);
    form.querySelector(".cancel").setAttribute("aria-label", "Cancel: do not end the call with " + who);
    const note = card.querySelector(".wrap-up-form textarea");
    if (arrived && call.wrap_up_note) note.value = call.wrap_up_note;
    const waiting = call.state === "waiting";
    card.querySelector(".controls").hidden = waiting;
    if (waiting) closeDialogs(card, false);
    card.querySelector(".state").textContent = waiting
      ? "Waiting to be put through to " + (call.agent || "the contact centre") + "…"
      : "";
    if (call.warning && call.warning !== card._warning) {
      card._warning = call.warning;
      card.querySelector(".outcome").textContent = WARNING_WORDS[call.warning] || "";
      if (call.warning !== "pending") announce(ANNOUNCED_WARNING[call.warning] + " " + who + ".");
    }
    tick(card);
    if (arrived && !firstLoad) {
      announce("Call arrived: " + who + (waiting ? ", waiting to be put through." : "."));
    } else if (before && before.state === "waiting" && !waiting) {
      announce("Put through: " + who + ".");
    }
  }

  // The running call timer, from the call's start (card data), every second.
  function elapsed(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + ss : m + ":" + ss;
  }

  function tick(card) {
    const started = Date.parse(card._call.started);
    if (!Number.isNaN(started)) card.querySelector(".elapsed").textContent = elapsed(Date.now() - started);
  }

  async function refresh() {
    try {
      const response = await fetch("/agent/live.json" + (showAll.checked ? "?all=1" : ""), {
        headers: {"Accept": "application/json"}, cache: "no-store",
      });
      if (response.redirected) {
        // the session has ended (idle, too old, or signed out elsewhere): sign in again
        location.assign(response.url);
        return;
      }
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      const seen = new Set();
      for (const call of data.calls) {
        render(call);
        seen.add(call.call_sid);
      }
      for (const [sid, card] of cards) {
        if (!seen.has(sid)) {
          if (!card._endedByMe) announce("Call ended: " + callerOf(card._call) + ".");
          card.remove();
          cards.delete(sid);
        }
      }
      if (firstLoad && data.calls.length) {
        announce(data.calls.length === 1 ? "1 live call." : data.calls.length + " live calls.");
      }
      if (failing) announce("The list is updating again.");
      firstLoad = false;
      failing = false;
      empty.hidden = data.calls.length > 0;
      status.textContent = "Updated " + new Date().toLocaleTimeString("en-GB");
    } catch (error) {
      status.textContent = "Could not update the list; retrying.";
      if (!failing) announce("Could not update the list of calls; retrying.");
      failing = true;
    }
  }

  if (simulate) {
    // The demonstration: a caller arrives, then the agent is put through a moment later.
    simulate.addEventListener("click", async () => {
      simulate.disabled = true;
      try {
        const made = await post("/agent/demo/calls", {});
        if (!made.ok) throw new Error(made.data.error || "not made");
        await refresh();
        setTimeout(async () => {
          await post("/agent/demo/calls/" + encodeURIComponent(made.data.call_sid) + "/join", {});
          await refresh();
        }, 2000);
      } catch (error) {
        announce("The simulated call could not start.");
      } finally {
        simulate.disabled = false;
      }
    });
  }

  showAll.addEventListener("change", refresh);
  refresh();
  setInterval(refresh, 1000);
  setInterval(() => { for (const card of cards.values()) tick(card); }, 1000);
})();
