/* admatch ad tag v1 — https://github.com/ (admatch) — no dependencies, no cookies, no storage.
 *   <script async src="https://ADS.HOST/v1/tag.js" data-site="SITE_TOKEN"></script>
 *   <div data-admatch-slot data-slots="2"></div>
 * Optional on the script: data-selector (the article's CSS selector), data-user-key (an opaque
 * reader id for frequency caps; never personal data).
 * Advertiser strings are set as DOM text only (textContent), never parsed as HTML. */
(function () {
  "use strict";
  var VERSION = "1";
  var MAX_TEXT = 20000;
  var MAX_SLOTS = 10;
  var script = document.currentScript ||
    document.querySelector('script[data-site][src*="/v1/tag.js"]');
  if (!script || window.__admatchTag) return;
  window.__admatchTag = VERSION;
  var site = script.getAttribute("data-site");
  var base = new URL(script.src, location.href);
  var api = base.origin + base.pathname.replace(/tag\.js$/, "");

  function warn(msg) {
    if (window.console) console.warn("admatch: " + msg);
  }

  function textOf(el) {
    return ((el && (el.innerText || el.textContent)) || "").replace(/\s+/g, " ").trim();
  }

  // The article: the configured selector, else <article>, else <main>, else the element holding
  // the most paragraph text.
  function article() {
    var sel = script.getAttribute("data-selector");
    var el = (sel && document.querySelector(sel)) || document.querySelector("article") ||
      document.querySelector("main");
    if (el) return el;
    var best = null, bestLen = 0, seen = [];
    var ps = document.getElementsByTagName("p");
    for (var i = 0; i < ps.length; i++) {
      var parent = ps[i].parentElement;
      if (!parent || seen.indexOf(parent) >= 0) continue;
      seen.push(parent);
      var n = textOf(parent).length;
      if (n > bestLen) { best = parent; bestLen = n; }
    }
    return best || document.body;
  }

  function pageUrl() {
    var canon = document.querySelector('link[rel="canonical"]');
    var u = new URL((canon && canon.href) || location.href);
    u.hash = "";
    return u.href;
  }

  function el(tag, style, text) {
    var e = document.createElement(tag);
    if (style) e.setAttribute("style", style);
    if (text) e.appendChild(document.createTextNode(text));
    return e;
  }

  function render(slot, ad, label) {
    var box = el("div", "border:1px solid #ddd;border-radius:4px;padding:8px 10px;margin:8px 0;" +
      "font:14px/1.5 sans-serif;background:#fafafa;position:relative");
    box.setAttribute("data-admatch-ad", "");
    var tag = el("span", "display:inline-block;font-size:11px;color:#666;border:1px solid #bbb;" +
      "border-radius:2px;padding:0 4px;margin-right:6px;vertical-align:1px", label);
    tag.setAttribute("data-admatch-label", "");
    var a = el("a", "color:#1a4fa0;font-weight:600;text-decoration:none", ad.title);
    a.href = ad.click_url;
    a.rel = "sponsored noopener";
    var head = el("div");
    head.appendChild(tag);
    head.appendChild(a);
    box.appendChild(head);
    if (ad.description) box.appendChild(el("div", "color:#333", ad.description));
    if (ad.domain) box.appendChild(el("div", "color:#080;font-size:12px", ad.domain));
    slot.appendChild(box);
    if (ad.view_url) watch(box, ad.view_url);
  }

  // Viewable impression (MRC display): >= 50 % of the ad in view for >= 1 s continuously,
  // with the page visible. One beacon per ad; the server counts an impression once.
  var timers = [];
  function watch(box, url) {
    if (!("IntersectionObserver" in window)) return;
    var timer = null, sent = false;
    function cancel() { if (timer) { clearTimeout(timer); timer = null; } }
    var io = new IntersectionObserver(function (entries) {
      var e = entries[entries.length - 1];
      if (e.intersectionRatio >= 0.5 && document.visibilityState === "visible") {
        if (!timer && !sent) {
          timer = setTimeout(function () {
            sent = true;
            io.disconnect();
            if (!(navigator.sendBeacon && navigator.sendBeacon(url, ""))) {
              fetch(url, { method: "POST", credentials: "omit", keepalive: true, mode: "no-cors" });
            }
          }, 1000);
        }
      } else {
        cancel();
      }
    }, { threshold: [0, 0.5, 1] });
    io.observe(box);
    timers.push(cancel);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible") timers.forEach(function (c) { c(); });
  });

  function run() {
    var slots = Array.prototype.slice.call(document.querySelectorAll("[data-admatch-slot]"));
    if (!site) return warn("the tag's script needs data-site=\"SITE_TOKEN\"");
    if (!slots.length) return warn("no <div data-admatch-slot> on this page");
    var wants = slots.map(function (s) {
      var n = parseInt(s.getAttribute("data-slots") || "1", 10);
      return n > 0 ? n : 1;
    });
    var total = Math.min(MAX_SLOTS, wants.reduce(function (a, b) { return a + b; }, 0));
    var body = article();
    var h1 = body.querySelector("h1") || document.querySelector("h1");
    var req = {
      site: site, slots: total,
      page: { url: pageUrl(), title: textOf(h1) || document.title || null,
              text: textOf(body).slice(0, MAX_TEXT) || document.title || "-" }
    };
    var user = script.getAttribute("data-user-key");
    if (user) req.user_key = user;
    // text/plain: a "simple" CORS request, so one request per page view (no preflight).
    fetch(api + "tag/match", { method: "POST", credentials: "omit", mode: "cors",
      headers: { "Content-Type": "text/plain;charset=UTF-8" }, body: JSON.stringify(req) })
      .then(function (r) {
        return r.json().then(function (j) {
          if (!r.ok) throw new Error((j && j.detail) || ("HTTP " + r.status));
          return j;
        });
      })
      .then(function (res) {
        var i = 0;
        slots.forEach(function (slot, k) {
          for (var n = 0; n < wants[k] && i < res.ads.length; n++) render(slot, res.ads[i++], res.label);
        });
        if (!res.ads.length) warn("no ad fits this page");
      })
      .catch(function (e) { warn("no ads: " + e.message); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
