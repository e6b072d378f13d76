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
  // A select whose options carry defaults for other fields (a service type's window and duration):
  // choosing an option fills them in, e.g. <option data-fill-window_start="10:30">.
  document.querySelectorAll("select[data-fill]").forEach(function (select) {
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      if (!option) { return; }
      Array.prototype.forEach.call(option.attributes, function (attribute) {
        if (attribute.name.indexOf("data-fill-") !== 0) { return; }
        var target = select.form && select.form.elements[attribute.name.slice("data-fill-".length)];
        if (target) { target.value = attribute.value; }
      });
    });
  });
  // A solver run under way: poll its status, show its progress, and when it has ended open the page that
  // shows its plan: <section data-run-poll="/api/v1/schedule-runs/7" data-run-done="/schedule?run=7">.
  document.querySelectorAll("[data-run-poll]").forEach(function (box) {
    var bar = box.querySelector("progress");
    function poll() {
      fetch(box.dataset.runPoll, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        })
        .then(function (run) {
          if (bar && typeof run.progress === "number") { bar.value = run.progress; }
          if (run.status === "queued" || run.status === "running") {
            window.setTimeout(poll, 1000);
          } else {
            window.location.assign(box.dataset.runDone);
          }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, 1000);
  });
  // A "tick all" box ticks every checkbox of the form it names: <input data-check-all="bulk-offer">.
  document.querySelectorAll("input[data-check-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      var boxes = document.querySelectorAll('input[type="checkbox"][form="' + all.dataset.checkAll + '"]');
      Array.prototype.forEach.call(boxes, function (box) { box.checked = all.checked; });
    });
  });
});
