/* Times on the hosted pages in the reader's own time zone.
 *
 * The server writes <time datetime="2026-12-02T19:30:00Z" data-local>19:30 UTC</time>; this
 * adds the browser's local time next to it ("19:30 UTC (20:30 your time)"), in the page's
 * language. Without JavaScript the UTC text stays. A static file: the CSP allows scripts from 'self' only.
 */
(function () {
  "use strict";
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) { return; }
    var lang = document.documentElement.lang;  // English: the browser's own region's way
    var local = when.toLocaleString(lang && lang !== "en" ? [lang] : [], el.dataset.local === "time"
      ? { hour: "2-digit", minute: "2-digit" }
      : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    // "your time" in the page's language, from the server (data-your-time).
    el.textContent = el.textContent + " (" + local + " " + (el.dataset.yourTime || "your time") + ")";
  });
}());
