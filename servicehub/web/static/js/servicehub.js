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
  // Ticking a row for a step kept folded away (<details> around the form the box names) unfolds the step.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches('input[type="checkbox"][form]') || !box.checked) { return; }
    var owner = document.getElementById(box.getAttribute("form"));
    var folded = owner && owner.closest("details");
    if (folded) { folded.open = true; }
  });
  // A part of the page served by another page: <div data-part="/recipients/7/cards?part=1"> is filled with it
  // (its content until then is a link to the same list on a page of its own).
  document.querySelectorAll("[data-part]").forEach(loadPart);
  // A form whose answer is a file to keep (a confirmation card's PDF): posted in the background, the file saved
  // as a download, and the page's parts (the list of cards) loaded again. A refusal (the server sends the page
  // back with its message) is shown by posting the form the ordinary way.
  document.querySelectorAll("form[data-download]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented || !window.fetch || !window.URL || !window.FormData) { return; }
      event.preventDefault();
      var button = form.querySelector('button[type="submit"]');
      var box = form.querySelector("[role=status]");
      if (button) { button.disabled = true; }
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin", redirect: "manual" })
        .then(function (response) {
          var type = response.headers.get("Content-Type") || "";
          if (!response.ok || type.indexOf("application/pdf") !== 0) { throw new Error("refused"); }
          var disposition = response.headers.get("Content-Disposition") || "";
          var name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || "download.pdf";
          return response.blob().then(function (blob) {
            var url = window.URL.createObjectURL(blob);
            var link = document.createElement("a");
            link.href = url;
            link.download = name;
            link.hidden = true;
            document.body.appendChild(link);
            link.click();
            link.remove();
            window.setTimeout(function () { window.URL.revokeObjectURL(url); }, 60000);
            if (box) { box.textContent = form.dataset.downloadDone; box.className = "record-message ok"; box.hidden = false; }
            if (button) { button.disabled = false; }
            document.querySelectorAll("[data-part]").forEach(loadPart);
          });
        })
        .catch(function () { HTMLFormElement.prototype.submit.call(form); });
    });
  });
});

function loadPart(box) {
  fetch(box.dataset.part, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.text();
    })
    .then(function (html) {
      var parsed = new DOMParser().parseFromString(html, "text/html");
      box.replaceChildren.apply(box, Array.prototype.map.call(parsed.body.childNodes, function (node) {
        return document.importNode(node, true);
      }));
    })
    .catch(function () { /* the link to the page of its own stays */ });
}

// A signature box (<canvas data-signature>) the recipient signs with a finger (or a mouse): strokes drawn as
// the pointer moves, a "clear" button beside it (data-signature-clear), and the form's state shown by
// data-signed on the canvas and its [data-testid=signature-state].
(function () {
  "use strict";
  var drawing = null;

  function setUp(canvas) {
    if (canvas.dataset.ready === "true") { return; }
    var ratio = window.devicePixelRatio || 1;
    var box = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(box.width * ratio));
    canvas.height = Math.max(1, Math.round(box.height * ratio));
    var context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.lineWidth = 2.5;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = "#111";
    context.fillStyle = "#111";
    canvas.dataset.ready = "true";
  }

  // A refusal shown for the stop goes once the caregiver changes the signature.
  function quiet(canvas) {
    var record = canvas.closest("[data-testid=record]");
    var message = record && record.querySelector("[data-testid=record-message].error");
    if (message) { message.hidden = true; }
  }

  function marked(canvas, signed) {
    canvas.dataset.signed = signed ? "true" : "false";
    var holder = canvas.closest(".signature");
    var state = holder && holder.querySelector("[data-testid=signature-state]");
    if (state) { state.dataset.signed = canvas.dataset.signed; }
  }

  function at(canvas, event) {
    var box = canvas.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }

  document.addEventListener("pointerdown", function (event) {
    var canvas = event.target.closest && event.target.closest("canvas[data-signature]");
    if (!canvas || (event.pointerType === "mouse" && event.button !== 0)) { return; }
    event.preventDefault();
    setUp(canvas);
    quiet(canvas);
    if (canvas.setPointerCapture) { canvas.setPointerCapture(event.pointerId); }
    var context = canvas.getContext("2d");
    var point = at(canvas, event);
    context.beginPath();
    context.arc(point.x, point.y, context.lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
    drawing = { canvas: canvas, context: context, last: point, id: event.pointerId };
  });

  document.addEventListener("pointermove", function (event) {
    if (!drawing || event.pointerId !== drawing.id) { return; }
    event.preventDefault();
    var moves = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    (moves.length ? moves : [event]).forEach(function (move) {
      var point = at(drawing.canvas, move);
      drawing.context.beginPath();
      drawing.context.moveTo(drawing.last.x, drawing.last.y);
      drawing.context.lineTo(point.x, point.y);
      drawing.context.stroke();
      drawing.last = point;
    });
    marked(drawing.canvas, true);
  });

  function stop(event) {
    if (!drawing || event.pointerId !== drawing.id) { return; }
    marked(drawing.canvas, true);
    drawing = null;
  }
  document.addEventListener("pointerup", stop);
  document.addEventListener("pointercancel", stop);

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-signature-clear]");
    if (!button) { return; }
    event.preventDefault();
    var canvas = button.closest(".signature").querySelector("canvas[data-signature]");
    if (!canvas) { return; }
    var context = canvas.getContext("2d");
    context.save();
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.restore();
    marked(canvas, false);
    quiet(canvas);
  });
})();

// The share of a signature box's pixels dark enough to count as ink, as the server measures it (#111 strokes
// over white paper: darker than mid-grey where more than about 54% opaque).
function inkShare(canvas) {
  var data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  var dark = 0;
  for (var i = 3; i < data.length; i += 4) {
    if (data[i] > 136) { dark += 1; }
  }
  return dark / (canvas.width * canvas.height);
}

// A caregiver's route (<ol data-recording>): check in, check out and record a missed visit from the stop's
// card, through the service-record API. A step goes with the phone's position (not for a missed visit), the
// page's CSRF token and an idempotency key made once per visit and step and kept in sessionStorage until the
// step succeeds, so that a retry after a lost connection returns what was recorded instead of a second record.
// On success (or when the visit changed meanwhile) the card is fetched again and replaced. The words shown
// come from the list's data-msg-* attributes, translated by the server.
(function () {
  "use strict";
  var STORE = "servicehub.idempotency.";
  var ACTIONS = ["check-in", "check-out", "outcome"];
  var SIGNATURE_INK = 0.005; // the server refuses a signature with less than 0.4% of its pixels inked
  // Refusals of a check-out's confirmation code, by their stable code: the form's data-msg-* words.
  var CODE_REFUSALS = { code_wrong: "msgCodeWrong", code_expired: "msgCodeExpired", code_reused: "msgCodeReused",
                        code_no_card: "msgCodeNoCard", code_locked: "msgCodeLocked" };
  var memory = {}; // keys, when sessionStorage is unavailable (private browsing)

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16); // a version-4 UUID where randomUUID is missing (not a secure context)
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  function keyFor(name) {
    var key = memory[name];
    try { key = window.sessionStorage.getItem(STORE + name) || key; } catch (e) { /* memory only */ }
    if (!key) {
      key = newKey();
      memory[name] = key;
      try { window.sessionStorage.setItem(STORE + name, key); } catch (e) { /* memory only */ }
    }
    return key;
  }

  function forgetKey(name) {
    delete memory[name];
    try { window.sessionStorage.removeItem(STORE + name); } catch (e) { /* memory only */ }
  }

  function position(words) {
    return new Promise(function (resolve, reject) {
      if (!navigator.geolocation) { reject(new Error(words.msgNoGeo)); return; }
      navigator.geolocation.getCurrentPosition(
        function (found) { resolve({ lat: found.coords.latitude, lon: found.coords.longitude }); },
        function (error) { reject(new Error(error.code === 1 ? words.msgGeoDenied : words.msgGeoUnavailable)); },
        { enableHighAccuracy: true, timeout: 20000, maximumAge: 30000 }
      );
    });
  }

  // The request body of a step, from its form; a check the server would refuse anyway throws its message.
  function collect(action, form, words) {
    if (action === "check-in") { return {}; }
    var fields = form.elements;
    if (action === "outcome") {
      if (!fields.reason.value) { throw new Error(words.msgReason); }
      return { outcome: "missed", reason: fields.reason.value, notes: fields.notes.value.trim() };
    }
    var code = fields.confirmation_code.disabled ? "" : fields.confirmation_code.value.replace(/\s+/g, "");
    if (code && !/^[0-9]{6}$/.test(code)) { throw new Error(words.msgCodeFormat); }
    var pad = form.querySelector("canvas[data-signature]");
    var signed = pad && pad.dataset.signed === "true";
    var tasks = Array.prototype.filter.call(form.querySelectorAll('input[name="tasks"]'), function (box) {
      return box.checked;
    }).map(function (box) { return box.value; });
    var score = form.querySelector('input[name="satisfaction"]:checked');
    var body = { tasks: tasks, confirmation_method: "none", satisfaction: score ? Number(score.value) : null,
                 notes: fields.notes.value.trim() };
    if (code) {
      body.confirmation_method = "code";
      body.confirmation_code = code;
    } else if (signed) {
      if (inkShare(pad) < SIGNATURE_INK) { throw new Error(words.msgSignMore); }
      body.confirmation_method = "signature";
      body.signature = pad.toDataURL("image/png");
    } else if (!window.confirm(words.msgNoConfirmation)) {
      return null; // the caregiver goes back to get a code or a signature
    }
    return body;
  }

  function flat(value) {
    if (Array.isArray(value)) { return value.map(flat).join(" "); }
    if (value && typeof value === "object") { return Object.keys(value).map(function (k) { return flat(value[k]); }).join(" "); }
    return String(value);
  }

  // What to tell the caregiver about a refusal (problem+json): the page's words where the refusal is known,
  // otherwise the server's message and its field errors under the fields' names. Marks the fields at fault.
  function explain(problem, status, form, words) {
    var errors = problem.errors || {};
    var lines = [];
    Object.keys(errors).forEach(function (name) {
      var field = form && form.querySelector('[data-field="' + name + '"]');
      if (field) {
        Array.prototype.forEach.call(field.querySelectorAll("input, select, textarea"), function (input) {
          input.setAttribute("aria-invalid", "true");
        });
      }
    });
    if (CODE_REFUSALS[problem.code] && words[CODE_REFUSALS[problem.code]]) {
      lines.push(words[CODE_REFUSALS[problem.code]]);
    } else if (errors.confirmation_code) {
      lines.push(words.msgCodeWrong);
    }
    if (errors.signature) { lines.push(words.msgSignature); }
    if (errors.lat || errors.lon) { lines.push(words.msgOutside); }
    if (status === 409 && problem.code !== "code_locked") { lines.push(words.msgStale); }
    if (status === 404) { lines.push(words.msgGone); }
    if (!lines.length) {
      lines.push(words.msgFailed + " " + (problem.message || status));
      Object.keys(errors).forEach(function (name) {
        var field = form && form.querySelector('[data-field="' + name + '"]');
        lines.push((field ? field.dataset.label : name) + ": " + flat(errors[name]));
      });
    }
    return lines;
  }

  function show(card, lines, kind) {
    var box = card.querySelector("[data-testid=record-message]");
    if (!box) {
      box = document.createElement("p");
      box.dataset.testid = "record-message";
      box.setAttribute("role", "status");
      (card.querySelector("[data-testid=record]") || card).appendChild(box);
    }
    box.className = "record-message " + kind;
    box.textContent = [].concat(lines).join("\n");
    box.hidden = false;
  }

  function busy(card, on) {
    card.setAttribute("aria-busy", on ? "true" : "false");
    Array.prototype.forEach.call(card.querySelectorAll("button"), function (button) { button.disabled = on; });
  }

  // Fetch the page again and put the card's new state in place of the old one (or reload the whole page).
  function refresh(card, lines, kind) {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html")
          .querySelector('li.stop-card[data-visit="' + card.dataset.visit + '"]');
        if (!fresh) { throw new Error("card gone"); }
        fresh = document.importNode(fresh, true);
        card.replaceWith(fresh);
        if (lines) { show(fresh, lines, kind); }
      })
      .catch(function () { window.location.reload(); });
  }

  function step(route, card, source) {
    if (!card || card.getAttribute("aria-busy") === "true") { return; }
    var action = source.dataset.record;
    var form = source.tagName === "FORM" ? source : null;
    var words = {}; // the route's words, and the form's own (a check-out's confirmation)
    [route.dataset, form ? form.dataset : {}].forEach(function (set) {
      Object.keys(set).forEach(function (name) { words[name] = set[name]; });
    });
    var body;
    if (form) {
      Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (input) {
        input.removeAttribute("aria-invalid");
      });
    }
    try { body = collect(action, form, words); } catch (problem) { show(card, problem.message, "error"); return; }
    if (body === null) { return; }
    busy(card, true);
    show(card, action === "outcome" ? words.msgSending : words.msgLocating, "busy");
    var located = action === "outcome" ? Promise.resolve(null) : position(words);
    located
      .then(function (where) {
        if (where) { body.lat = where.lat; body.lon = where.lon; }
        show(card, words.msgSending, "busy");
        var name = card.dataset.visit + ":" + action;
        var meta = document.querySelector('meta[name="csrf-token"]');
        var headers = { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": keyFor(name) };
        if (meta) { headers["X-CSRFToken"] = meta.content; }
        return fetch(source.dataset.url, { method: "POST", credentials: "same-origin", headers: headers, body: JSON.stringify(body) })
          .catch(function () { throw new Error(words.msgNetwork); })
          .then(function (response) {
            if (response.ok) {
              forgetKey(name);
              return refresh(card, words.msgSaved, "ok");
            }
            return response.json().catch(function () { return {}; }).then(function (problem) {
              var lines = explain(problem, response.status, form, words);
              if (problem.code === "code_locked" && form) { // no more codes: a signature, or none
                form.elements.confirmation_code.value = "";
                form.elements.confirmation_code.disabled = true;
              } else if (response.status === 409) {
                return refresh(card, lines, "error");
              }
              busy(card, false);
              show(card, lines, "error");
            });
          });
      })
      .catch(function (error) {
        busy(card, false);
        show(card, error.message || words.msgFailed, "error");
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var route = document.querySelector("[data-recording]");
    if (!route) { return; }
    // A step no card offers any more (done, or recorded by a request whose answer was lost) needs no key.
    Array.prototype.forEach.call(route.querySelectorAll("li.stop-card"), function (card) {
      ACTIONS.forEach(function (action) {
        if (!card.querySelector('[data-record="' + action + '"]')) { forgetKey(card.dataset.visit + ":" + action); }
      });
    });
    route.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-record]");
      if (!button) { return; }
      event.preventDefault();
      step(route, button.closest("li.stop-card"), button);
    });
    route.addEventListener("submit", function (event) {
      var form = event.target.closest("form[data-record]");
      if (!form) { return; }
      event.preventDefault();
      step(route, form.closest("li.stop-card"), form);
    });
  });
})();
