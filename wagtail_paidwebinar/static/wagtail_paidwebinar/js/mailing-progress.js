/* wagtail-paidwebinar: live mailing progress (polls a small JSON endpoint every 2 s)
   and auto-submitting filter selects. No dependencies. */
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.hasAttribute && target.hasAttribute("data-pw-autosubmit") && target.form) {
      target.form.submit();
    }
  });

  var box = document.querySelector("[data-pw-progress]");
  if (!box) return;
  var url = box.getAttribute("data-pw-progress-url-value");
  var wasFinished = box.getAttribute("data-pw-finished") === "1";
  if (!url || wasFinished) return;

  var INTERVAL = 2000;
  var failures = 0;

  function setText(name, value) {
    var el = box.querySelector('[data-pw-count="' + name + '"]');
    if (el) el.textContent = String(value);
  }

  function setWidth(name, percent) {
    var el = box.querySelector('[data-pw-bar="' + name + '"]');
    if (el) el.style.width = Math.max(0, Math.min(100, Number(percent) || 0)) + "%";
  }

  function update(data) {
    ["sent", "failed", "pending", "sending", "total", "percent"].forEach(function (key) {
      setText(key, data[key]);
    });
    setWidth("sent", data.sent_percent);
    setWidth("failed", data.failed_percent);
    var bar = box.querySelector('[role="progressbar"]');
    if (bar) bar.setAttribute("aria-valuenow", String(data.percent));
    var status = document.querySelector("[data-pw-status]");
    if (status && data.status_label) status.textContent = data.status_label;
    var preparing = box.querySelector("[data-pw-preparing]");
    if (preparing) preparing.hidden = !data.preparing;
    updateQueue(data.queue);
  }

  // The queue notices (no worker, Redis down, stalled) follow the poll too.
  function updateQueue(queue) {
    var notices = document.querySelector("[data-pw-queue]");
    if (!notices || !queue) return;
    var shown = { unreachable: !queue.reachable, needs_worker: queue.needs_worker, stalled: queue.stalled };
    Object.keys(shown).forEach(function (key) {
      var el = notices.querySelector('[data-pw-queue-notice="' + key + '"]');
      if (el) el.hidden = !shown[key];
    });
    var minutes = notices.querySelector("[data-pw-stalled-minutes]");
    if (minutes) minutes.textContent = String(queue.stalled_minutes);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "XMLHttpRequest", Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        update(data);
        if (data.finished) {
          // Reload once so the buttons and the recipient log match the final state.
          window.setTimeout(function () { window.location.reload(); }, 800);
          return;
        }
        window.setTimeout(poll, INTERVAL);
      })
      .catch(function () {
        failures += 1;
        // Back off while the server is unreachable; give up after ~a minute.
        if (failures < 15) window.setTimeout(poll, INTERVAL * Math.min(failures + 1, 5));
      });
  }

  window.setTimeout(poll, INTERVAL);
})();
