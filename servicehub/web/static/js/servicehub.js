// Site-wide behaviour (no inline scripts anywhere, so a strict CSP holds).
document.addEventListener("DOMContentLoaded", function () {
  // htmx requests carry the CSRF token of the page.
  var meta = document.querySelector('meta[name="csrf-token"]');
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (meta) { event.detail.headers["X-CSRFToken"] = meta.content; }
  });
  // Forms that ask for confirmation before a destructive step.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
});
