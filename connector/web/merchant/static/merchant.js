// The merchant pages' one script (no inline scripts: the CSP forbids them). Everything works
// without it; it adds a "Copy" button to each element marked data-copy.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-copy]").forEach(function (field) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy " + (field.getAttribute("aria-label") || "value"));
    button.addEventListener("click", function () {
      var text = field.value !== undefined ? field.value : field.textContent;
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { field.select && field.select(); });
      } else if (field.select) {
        field.select();
        document.execCommand("copy");
        done();
      }
    });
    field.insertAdjacentElement("afterend", button);
  });
});
