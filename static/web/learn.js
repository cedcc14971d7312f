// The practice page without reloads: answers go by fetch, feedback and mastery are swapped in,
// and focus moves to what the learner needs next: the feedback (so a screen reader reads it; Enter
// there goes on), then the next question's answer field.
(function () {
  "use strict";
  var root = document.getElementById("learn");
  if (!root || !window.fetch) { return; }
  var questionSlot = document.getElementById("question-slot");
  var feedbackSlot = document.getElementById("feedback-slot");
  var masterySlot = document.getElementById("mastery-slot");
  var questionUrl = root.getAttribute("data-question-url");

  function showError(form, text) {
    var box = form.querySelector(".form-error");
    if (box) { box.textContent = text; box.hidden = !text; }
  }

  function setBusy(form, busy) {
    form.querySelectorAll("input, button").forEach(function (element) { element.disabled = busy; });
  }

  function focusQuestion() {
    var target = questionSlot.querySelector("#response, .choice") || questionSlot.querySelector("h2");
    if (!target) { return; }
    if (!target.matches("input, button")) { target.setAttribute("tabindex", "-1"); }
    target.focus();
  }

  function updateMastery(html) {
    var before = {};
    masterySlot.querySelectorAll(".skill-bar").forEach(function (bar) {
      before[bar.getAttribute("data-skill")] = bar.getAttribute("data-percent");
    });
    masterySlot.innerHTML = html;
    masterySlot.querySelectorAll(".skill-bar").forEach(function (bar) {
      var old = before[bar.getAttribute("data-skill")];
      var now = bar.getAttribute("data-percent");
      if (old === undefined || old === now) { return; }
      var fill = bar.querySelector(".meter span");
      fill.style.width = old + "%";
      bar.classList.add("changed");
      requestAnimationFrame(function () { requestAnimationFrame(function () { fill.style.width = now + "%"; }); });
    });
  }

  function loadQuestion() {
    return fetch(questionUrl, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.text();
      })
      .then(function (html) {
        questionSlot.innerHTML = html;
        feedbackSlot.innerHTML = "";
        focusQuestion();
      });
  }

  questionSlot.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "answer-form") { return; }
    event.preventDefault();
    if (form.getAttribute("data-busy")) { return; }
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) { data.set(event.submitter.name, event.submitter.value); }
    if (!String(data.get("response") || "").trim()) {
      showError(form, "Type an answer first.");
      focusQuestion();
      return;
    }
    showError(form, "");
    form.setAttribute("data-busy", "1");
    setBusy(form, true);
    fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin", headers: { "X-Requested-With": "fetch" },
    }).then(function (response) {
      if ((response.headers.get("Content-Type") || "").indexOf("json") < 0) {
        // Signed out meanwhile (a redirect to the login page) or a server error page: show it.
        window.location.reload();
        return new Promise(function () {});
      }
      return response.json().then(function (payload) { return { ok: response.ok, payload: payload }; });
    }).then(function (result) {
      if (!result.ok) {
        if (result.payload.stale) { return loadQuestion(); }
        throw new Error(result.payload.error || "The answer was not accepted.");
      }
      feedbackSlot.innerHTML = result.payload.feedback;
      updateMastery(result.payload.mastery);
      var card = questionSlot.querySelector("#question");
      if (card) { card.classList.add("answered"); }
      var feedback = feedbackSlot.querySelector("#feedback");
      if (feedback) { feedback.focus(); }
    }).catch(function (error) {
      form.removeAttribute("data-busy");
      setBusy(form, false);
      showError(form, error && error.message && error.message.indexOf("status") !== 0 && !(error instanceof SyntaxError)
        ? error.message : "Could not reach the server. Please try again.");
      focusQuestion();
    });
  });

  // Enter on the focused feedback goes to the next question, as the Next button would.
  feedbackSlot.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.target.id !== "feedback") { return; }
    var link = document.getElementById("next-question");
    if (link) { event.preventDefault(); link.click(); }
  });

  feedbackSlot.addEventListener("click", function (event) {
    var link = event.target.closest("#next-question");
    if (!link) { return; }
    event.preventDefault();
    loadQuestion().catch(function () { window.location.href = link.href; });
  });

  // Number keys pick a multiple-choice answer when the focus is not in a text field.
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName)) { return; }
    var index = parseInt(event.key, 10);
    if (!(index >= 1 && index <= 9)) { return; }
    var choice = questionSlot.querySelectorAll(".choice:not(:disabled)")[index - 1];
    if (choice) { event.preventDefault(); choice.click(); }
  });
})();
