/* django-scout live widget ({% scout_live obj %}): follows the live relay with EventSource.
 *
 * Plain ES2017, no build step, no dependencies, no inline script needed. For each
 * [data-scout-live-url] element it opens an EventSource on that URL (resuming after the last
 * event the server rendered), appends each `scout_event` to the timeline (keeping at most
 * data-scout-live-limit items), updates the status badge on `status`, shows the outcome and
 * closes the stream on `end`. Event data are untrusted: only textContent is ever set.
 */
(function () {
  "use strict";

  var SUMMARY_LENGTH = 160; // as django_scout.templatetags.scout_live.SUMMARY_LENGTH
  var SUMMARY_KEYS = ["text", "content", "message"];

  function cut(text) {
    return text.length <= SUMMARY_LENGTH ? text : text.slice(0, SUMMARY_LENGTH - 1) + "\u2026";
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // The same one-line summary as the server's event_summary().
  function summary(data) {
    var holders = [data, isObject(data) ? data.data : null];
    for (var h = 0; h < holders.length; h++) {
      if (!isObject(holders[h])) continue;
      for (var k = 0; k < SUMMARY_KEYS.length; k++) {
        var value = holders[h][SUMMARY_KEYS[k]];
        if (typeof value === "string" && value.trim()) return cut(value.trim());
      }
    }
    if (data === null || data === undefined || data === "") return "";
    return cut(typeof data === "string" ? data : JSON.stringify(data));
  }

  function clock(iso) {
    var moment = iso ? new Date(iso) : null;
    return moment && !isNaN(moment.getTime()) ? moment.toISOString().slice(11, 19) : "";
  }

  function span(className, text) {
    var element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function statusClass(status) {
    return "scout-live__badge--" + String(status).replace(/[^a-z_-]/gi, "");
  }

  function follow(root) {
    if (root.hasAttribute("data-scout-live-started") || typeof EventSource === "undefined") return;
    root.setAttribute("data-scout-live-started", "");
    var badge = root.querySelector("[data-scout-live-badge]");
    var timeline = root.querySelector("[data-scout-live-timeline]");
    var outcome = root.querySelector("[data-scout-live-outcome]");
    var note = root.querySelector("[data-scout-live-note]");
    var limit = parseInt(root.getAttribute("data-scout-live-limit"), 10) || 50;
    var last = parseInt(root.getAttribute("data-scout-live-last-event-id"), 10);
    if (isNaN(last)) last = -1;
    var url = root.getAttribute("data-scout-live-url");
    if (last >= 0) url += (url.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + last;

    function say(name) {
      if (note) note.textContent = root.getAttribute("data-scout-live-text-" + name) || "";
    }

    function setStatus(status, errorCode) {
      root.setAttribute("data-scout-live-status", status);
      if (badge) {
        badge.className = "scout-live__badge " + statusClass(status);
        badge.textContent = status;
      }
      if (outcome) {
        outcome.querySelector("[data-scout-live-outcome-status]").textContent = status;
        outcome.querySelector("[data-scout-live-outcome-error]").textContent = errorCode || "";
      }
    }

    function addEvent(event) {
      if (!timeline || typeof event.sequence !== "number" || event.sequence <= last) return;
      last = event.sequence;
      var item = document.createElement("li");
      item.className = "scout-live__event";
      item.setAttribute("data-sequence", String(event.sequence));
      var moment = event.timestamp || event.created_at || "";
      var time = document.createElement("time");
      time.className = "scout-live__time";
      time.setAttribute("datetime", moment);
      time.textContent = clock(moment);
      item.appendChild(time);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(span("scout-live__name", String(event.name)));
      item.appendChild(document.createTextNode(" "));
      item.appendChild(span("scout-live__summary", summary(event.data)));
      timeline.appendChild(item);
      while (timeline.children.length > limit) timeline.removeChild(timeline.firstElementChild);
    }

    var source = new EventSource(url);
    var errorCode = "";
    source.addEventListener("open", function () { say("live"); });
    source.addEventListener("scout_event", function (message) {
      addEvent(JSON.parse(message.data));
    });
    source.addEventListener("status", function (message) {
      var status = JSON.parse(message.data);
      errorCode = status.error_code || "";
      setStatus(status.status, errorCode);
    });
    source.addEventListener("end", function (message) {
      source.close();
      var end = JSON.parse(message.data);
      root.setAttribute("data-scout-live-ended", "");
      if (!end.status) {  // the row was deleted: nothing more will come
        say("stopped");
        return;
      }
      setStatus(end.status, errorCode);
      if (outcome) outcome.hidden = false;
      if (note) note.hidden = true;
    });
    source.addEventListener("error", function () {
      // CONNECTING: the browser reconnects by itself (resuming with Last-Event-ID);
      // CLOSED: it gave up (an answer that is not a stream, e.g. 403).
      say(source.readyState === EventSource.CLOSED ? "stopped" : "reconnecting");
    });
  }

  function start() {
    var roots = document.querySelectorAll("[data-scout-live-url]");
    for (var i = 0; i < roots.length; i++) follow(roots[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
