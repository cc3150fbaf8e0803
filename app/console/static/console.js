// weightgate console: the few things a page needs from script. Loaded as a file (the CSP
// allows no inline script); every page works without it, showing times in UTC.
(function () {
  "use strict";

  // Times are rendered by the server in the zone this cookie names. Keep it current; when
  // the page was rendered for another zone, render it again once for this one.
  function syncZone() {
    var zone;
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {
      return;
    }
    // IANA names are cookie-safe as they are ("Europe/Paris"); anything else is not a zone.
    if (!zone || zone.length > 64 || !/^[A-Za-z0-9_+\-\/]+$/.test(zone)) return;
    var had = (document.cookie.match(/(?:^|; )wg_tz=([^;]*)/) || [])[1];
    document.cookie = "wg_tz=" + zone +
      "; path=/console; max-age=31536000; samesite=lax" +
      (location.protocol === "https:" ? "; secure" : "");
    var shown = document.body.getAttribute("data-zone");
    var signedIn = document.querySelector("form.sign-out") !== null;
    if (signedIn && had !== zone && shown !== zone && shown !== null) {
      location.reload();
    }
  }

  // <form data-confirm="..."> asks before it is sent (lift now, restrict, bulk decisions).
  function confirmForms() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement)) return;
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) event.preventDefault();
    }, true);
  }

  // "Select all" checkboxes: <input type=checkbox data-select-all="name">.
  function selectAll() {
    document.addEventListener("change", function (event) {
      var box = event.target;
      if (!(box instanceof HTMLInputElement)) return;
      var name = box.getAttribute("data-select-all");
      if (!name) return;
      var boxes = document.querySelectorAll('input[type=checkbox][name="' + name + '"]');
      for (var i = 0; i < boxes.length; i++) boxes[i].checked = box.checked;
    });
  }

  // <button data-copy="id"> copies the text of the element with that id (a token shown
  // once, a command). Falls back to selecting the text where the Clipboard API is missing.
  function copyButtons() {
    document.addEventListener("click", function (event) {
      var button = event.target;
      if (!(button instanceof HTMLButtonElement)) return;
      var id = button.getAttribute("data-copy");
      if (!id) return;
      var source = document.getElementById(id);
      if (!source) return;
      var text = source.textContent || "";
      var done = function () {
        button.textContent = "Copied";
        button.setAttribute("aria-live", "polite");
      };
      var select = function () {
        var range = document.createRange();
        range.selectNodeContents(source);
        var selection = window.getSelection();
        if (selection) {
          selection.removeAllRanges();
          selection.addRange(range);
        }
        button.textContent = "Selected: press Ctrl+C";
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, select);
      } else {
        select();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncZone();
    confirmForms();
    selectAll();
    copyButtons();
  });
})();
