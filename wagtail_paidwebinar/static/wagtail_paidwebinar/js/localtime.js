/* Shows a webinar's start in the visitor's own timezone. No third-party code. */
(function () {
  "use strict";
  var fmt;
  try {
    fmt = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
      dateStyle: "full",
      timeStyle: "short",
    });
  } catch (e) {
    return;
  }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll("[data-pw-localtime-for]").forEach(function (el) {
    // Same zone as the webinar's: the line would only repeat the start time.
    if (zone && el.getAttribute("data-pw-zone") === zone) return;
    var when = new Date(el.getAttribute("data-pw-localtime-for"));
    if (isNaN(when)) return;
    el.querySelector("span").textContent = fmt.format(when) + (zone ? " (" + zone + ")" : "");
    el.hidden = false;
  });
})();
