// The agent console: polls live calls every second and sends Warn / End presses.
// Everything the caller controls is written with textContent, never as HTML.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const list = document.getElementById("calls");
  const empty = document.getElementById("no-calls");
  const status = document.getElementById("status");
  const showAll = document.getElementById("show-all");
  const template = document.getElementById("call-card");
  const cards = new Map();

  async function press(call, kind, reason) {
    const card = cards.get(call.call_sid);
    const outcome = card.querySelector(".outcome");
    outcome.textContent = kind === "warn" ? "Playing the warning…" : "Ending the call…";
    const response = await fetch("/agent/calls/" + encodeURIComponent(call.call_sid) + "/" + kind, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify(reason ? {reason: reason} : {}),
    });
    const data = await response.json();
    if (!response.ok) {
      outcome.textContent = data.error || "Something went wrong";
      return false;
    }
    if (kind === "warn") {
      // Twilio says later whether it played: the next polls bring its word
      card._warning = data.outcome;
      outcome.textContent = WARNING_WORDS[data.outcome] || "";
    } else {
      // what happened beyond the end (the caller had already gone, say) follows, never replaces it
      outcome.textContent = "Call ended." + (data.detail ? " Note: " + data.detail + "." : "");
    }
    return true;
  }

  const WARNING_WORDS = {
    pending: "Warning sent: waiting for Twilio to say it has played…",
    ok: "Warning played. The call continues.",
    failed: "The warning did not play. Ending the call now needs a reason.",
  };

  function render(call) {
    let card = cards.get(call.call_sid);
    if (!card) {
      card = template.content.firstElementChild.cloneNode(true);
      card.dataset.callSid = call.call_sid;
      const form = card.querySelector(".end-form");
      card.querySelector(".warn").addEventListener("click", () => press(card._call, "warn"));
      card.querySelector(".end").addEventListener("click", () => {
        if (card._call.warned) {
          press(card._call, "end");
        } else {
          form.hidden = false;
          form.querySelector("textarea").focus();
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
      form.querySelector(".cancel").addEventListener("click", () => { form.hidden = true; });
      cards.set(call.call_sid, card);
      list.appendChild(card);
    }
    card._call = call;
    const who = call.customer ? call.customer.name + " (" + call.customer.reference + ")" : call.from;
    card.querySelector(".caller").textContent = who;
    const since = new Date(call.since || call.started).toLocaleTimeString("en-GB");
    // The reasonable adjustments in words, from the server (the language is named first).
    const adjustments = call.customer ? " · " + call.customer.adjustment_texts.join(" · ") : "";
    card.querySelector(".meta").textContent =
      call.from + " · since " + since + " · " + (call.agent || "contact centre") + adjustments;
    const flags = card.querySelector(".flags");
    // The words come from the server (each kind's declaration), never from a table here.
    flags.replaceChildren(...call.flag_texts.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
    card.querySelector(".end").textContent = call.warned ? "End call" : "End call (reason needed)";
    const waiting = call.state === "waiting";
    card.querySelector(".controls").hidden = waiting;
    card.querySelector(".state").textContent = waiting
      ? "Waiting to be put through to " + (call.agent || "the contact centre") + "…"
      : "";
    if (call.warning && call.warning !== card._warning) {
      card._warning = call.warning;
      card.querySelector(".outcome").textContent = WARNING_WORDS[call.warning] || "";
    }
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
        if (!seen.has(sid)) { card.remove(); cards.delete(sid); }
      }
      empty.hidden = data.calls.length > 0;
      status.textContent = "Updated " + new Date().toLocaleTimeString("en-GB");
    } catch (error) {
      status.textContent = "Could not update the list; retrying.";
    }
  }

  showAll.addEventListener("change", refresh);
  refresh();
  setInterval(refresh, 1000);
})();
