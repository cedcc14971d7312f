// Live progress of running fits: poll each one's JSON every second, then reload the table when one ends.
(function () {
  "use strict";
  var box = document.getElementById("fits-table");
  if (!box || !window.fetch) { return; }
  var statusUrl = box.getAttribute("data-status-url");
  var tableUrl = box.getAttribute("data-table-url");

  function running() {
    var table = box.querySelector("table.fits");
    return ((table && table.getAttribute("data-running")) || "").split(",").filter(Boolean);
  }

  function show(state) {
    var row = document.getElementById("fit-" + state.id);
    if (!row) { return; }
    var badge = row.querySelector("[data-role=status]");
    if (badge) { badge.textContent = state.status; badge.className = "badge badge-" + state.status; }
    var percent = Math.round(100 * (state.progress || 0));
    var bar = row.querySelector(".progress");
    if (bar) { bar.setAttribute("aria-valuenow", String(percent)); bar.querySelector("span").style.width = percent + "%"; }
    var stage = row.querySelector("[data-role=stage]");
    if (stage) { stage.textContent = (state.stage || "waiting for a worker") + " · " + percent + "%"; }
  }

  function poll() {
    var ids = running();
    if (!ids.length) { return; }
    Promise.all(ids.map(function (id) {
      return fetch(statusUrl.replace(/\/0\.json$/, "/" + id + ".json"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .catch(function () { return null; });
    })).then(function (states) {
      var finished = false;
      states.forEach(function (state) {
        if (!state) { return; }
        show(state);
        finished = finished || state.finished;
      });
      if (!finished) { return null; }
      return fetch(tableUrl, { credentials: "same-origin" }).then(function (response) {
        return response.ok ? response.text() : null;
      }).then(function (html) { if (html) { box.innerHTML = html; } });
    }).catch(function () { return null; }).then(function () { window.setTimeout(poll, 1000); });
  }

  window.setTimeout(poll, 1000);
})();
