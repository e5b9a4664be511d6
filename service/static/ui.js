// DOM helpers shared by the views: building elements, form validation, messages, result cards.
// Text is always set with textContent, never as HTML.

import { statusHint } from "./api.js";

export const PAGE = JSON.parse(document.getElementById("page-data").textContent);

/** Create an element: el("p", {class: "x"}, "text", child, …). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function languageName(code) {
  return PAGE.languages[code] || code;
}

export function formatKm(km) {
  if (km === null || km === undefined) return "";
  return km < 1 ? "unter 1 km entfernt" : `${Math.round(km).toLocaleString("de-DE")} km entfernt`;
}

export function formatDate(iso) {
  if (!iso) return "";
  const [y, m, d] = iso.slice(0, 10).split("-");
  return `${d}.${m}.${y}`;
}

// ------------------------------------------------------------------ messages and validation
function fieldLabels(form) {
  try { return JSON.parse(form.dataset.fieldLabels || "{}"); } catch { return {}; }
}

/** Remove every field error and the form's message. */
export function clearErrors(form) {
  for (const node of form.querySelectorAll("[aria-invalid='true']")) node.removeAttribute("aria-invalid");
  for (const node of form.querySelectorAll(".field-error")) { node.textContent = ""; node.hidden = true; }
  const box = form.querySelector(".form-message");
  if (box) { box.replaceChildren(); box.hidden = true; box.classList.remove("info"); }
}

function errorNodeFor(control) {
  const ids = (control.getAttribute("aria-describedby") || "").split(/\s+/);
  for (const id of ids) {
    const node = id && document.getElementById(id);
    if (node && node.classList.contains("field-error")) return node;
  }
  return null;
}

/** Mark one control invalid with a German message below it. */
export function setFieldError(control, message) {
  control.setAttribute("aria-invalid", "true");
  const node = errorNodeFor(control);
  if (node) { node.textContent = message; node.hidden = false; }
}

/** Show a message box at the top of a form: a lead text and an optional list of points. */
export function showFormMessage(form, lead, points = [], kind = "error") {
  const box = form.querySelector(".form-message");
  if (!box) return;
  box.classList.toggle("info", kind === "info");
  box.replaceChildren(el("p", { text: lead }));
  if (points.length) box.append(el("ul", {}, ...points.map((p) => el("li", { text: p }))));
  box.hidden = false;
}

/** After client-side checks failed: summary at the top, focus on the first bad field. */
export function reportInvalid(form, problems) {
  for (const [control, message] of problems) setFieldError(control, message);
  showFormMessage(form, problems.length === 1 ? "Bitte prüfen Sie die markierte Angabe:" : "Bitte prüfen Sie die markierten Angaben:",
                  problems.map(([, message]) => message));
  const first = problems[0][0];
  (first.matches("fieldset") ? first.querySelector("input, select, textarea") || first : first).focus();
}

/** Show an API error: a hint by status, the API's German message and its details, marked on the fields. */
export function showApiError(form, result, what) {
  const labels = fieldLabels(form);
  const points = [];
  for (const detail of result.error.details || []) {
    if (!detail || typeof detail !== "object") continue;
    const field = detail.field || "";
    const control = field ? form.querySelector(`[data-field="${CSS.escape(field)}"]`) : null;
    const label = labels[field] || (field && field !== "(body)" ? field : "");
    // a detail without its own message names the field the main message is about
    const message = detail.message || (control ? result.error.message : "");
    if (!message) continue;
    const text = label ? `${label}: ${message}` : message;
    if (control) setFieldError(control, text);
    if (detail.message) points.push(text);
  }
  const hint = statusHint(result.status, what);
  showFormMessage(form, [hint, result.error.message].filter(Boolean).join(" "), points);
}

/** Check the text-like and number controls of a form (data-required, data-maxlength, data-min/max). */
export function checkControls(form, labels) {
  const problems = [];
  for (const control of form.querySelectorAll("input, textarea, select")) {
    if (control.closest("[hidden]") || control.disabled) continue;
    const label = labels[control.id] || control.labels?.[0]?.textContent.replace("(Pflichtfeld)", "").trim() || control.name;
    const value = (control.value || "").trim();
    if (control.type === "number") {
      if (control.validity.badInput) { problems.push([control, `${label}: bitte eine ganze Zahl eingeben.`]); continue; }
      if (value === "") { if (control.dataset.required) problems.push([control, `${label}: bitte eine Zahl eingeben.`]); continue; }
      const n = Number(value), min = Number(control.dataset.min), max = Number(control.dataset.max);
      if (!Number.isInteger(n)) problems.push([control, `${label}: bitte eine ganze Zahl eingeben.`]);
      else if (n < min || n > max) problems.push([control, `${label}: bitte eine Zahl von ${min} bis ${max} eingeben.`]);
      continue;
    }
    if (control.dataset.required && value === "") {
      problems.push([control, control.tagName === "SELECT" ? `${label}: bitte auswählen.` : `${label}: bitte ausfüllen.`]);
      continue;
    }
    const max = Number(control.dataset.maxlength || 0);
    if (max && value.length > max) {
      problems.push([control, `${label}: zu lang – höchstens ${max.toLocaleString("de-DE")} Zeichen, jetzt ${value.length.toLocaleString("de-DE")}.`]);
    }
  }
  return problems;
}

/** Live character counters for textareas with data-maxlength. */
export function attachCounters(root = document) {
  for (const counter of root.querySelectorAll("[data-counter-for]")) {
    const area = document.getElementById(counter.dataset.counterFor);
    const max = Number(area.dataset.maxlength);
    const update = () => {
      const n = area.value.trim().length;   // the API counts without surrounding blanks, so do we
      counter.textContent = n > max
        ? `${n.toLocaleString("de-DE")} von höchstens ${max.toLocaleString("de-DE")} Zeichen – bitte kürzen.`
        : `${n.toLocaleString("de-DE")} von ${max.toLocaleString("de-DE")} Zeichen`;
    };
    area.addEventListener("input", update);
    update();
  }
}

export function checkedValues(container, name) {
  return [...container.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
}

/** Mark a results region busy while a request runs, and the submit button disabled
 *  (it stays disabled if meanwhile the service turned out to be starting: readiness.js enables it). */
export async function whileBusy(form, region, work) {
  const button = form.querySelector("button[type='submit']");
  region.setAttribute("aria-busy", "true");
  if (button) button.disabled = true;
  try { return await work(); } finally {
    region.setAttribute("aria-busy", "false");
    if (button) button.disabled = Boolean(form.dataset.needsMatcher !== undefined && document.body.dataset.notReady);
  }
}

// ------------------------------------------------------------------ result cards
/** Contact data: present only when the API sent it (editor/admin keys). */
export function contactBlock(contact) {
  if (!contact) return null;
  const rows = [];
  const add = (label, value, href) => {
    if (!value) return;
    rows.push(el("dt", { text: label }), el("dd", {}, href ? el("a", { href, text: value }) : value));
  };
  add("Kontakt", contact.person);
  add("E-Mail", contact.email, contact.email ? `mailto:${contact.email}` : null);
  add("Telefon", contact.phone, contact.phone ? `tel:${contact.phone.replace(/[^+\d]/g, "")}` : null);
  if (contact.website && /^https?:\/\//i.test(contact.website)) add("Website", contact.website, contact.website);
  else add("Website", contact.website);
  add("Adresse", contact.address);
  return rows.length ? el("dl", { class: "contact", "aria-label": "Kontaktdaten" }, ...rows) : null;
}

/** One result card: rank and name, a line of facts, the German reasons, contact data if sent. */
export function resultCard(result, { facts = [], headingLevel = "h3" } = {}) {
  const entity = result.entity;
  const explanation = result.explanation || {};
  const headingId = `card-${result.rank}-${entity.id}-${Math.random().toString(36).slice(2, 8)}`;
  const meta = [entity.city, formatKm(explanation.distance_km), ...facts].filter(Boolean).join(" · ");
  const card = el("article", { class: `card${result.strength ? ` strength-${result.strength}` : ""}`,
                               "aria-labelledby": headingId, "data-entity-id": entity.id },
    el(headingLevel, { id: headingId, text: `${result.rank}. ${entity.name}` }),
    strengthBadge(result),
    meta ? el("p", { class: "meta", text: meta }) : null,
    el("ul", { class: "reasons", "aria-label": "Warum dieser Vorschlag" },
       ...(explanation.reasons || []).map((r) => el("li", { text: r }))),
    contactBlock(entity.contact));
  return card;
}

/** How well a result fits, as the API's calibrated label („passt gut“ …); nothing without a calibration. */
export function strengthBadge(result) {
  if (!result.strength_label) return null;
  const percent = Math.round(100 * result.confidence).toLocaleString("de-DE");
  return el("p", { class: `strength ${result.strength}`, title: `Geschätzte Wahrscheinlichkeit, dass es passt: ${percent} %` },
    el("span", { class: "visually-hidden", text: "Passung: " }), result.strength_label);
}

/** Before a result list: the answer's hint when nothing fits well (what to change), else nothing.
 *  ``list`` is the list element; an earlier hint before it is removed. */
export function showAssessment(list, assessment) {
  const previous = list.previousElementSibling;
  if (previous && previous.classList.contains("nothing-fits")) previous.remove();
  if (!assessment || !assessment.nothing_fits) return;
  const hint = el("div", { class: "nothing-fits", role: "note" }, el("p", { text: assessment.message }));
  if (assessment.suggestions && assessment.suggestions.length) {
    hint.append(el("ul", { "aria-label": "Was Sie ändern können" }, ...assessment.suggestions.map((s) => el("li", { text: s }))));
  }
  list.before(hint);
}

export function languagesFact(entity) {
  return entity.languages && entity.languages.length
    ? `Sprachen: ${entity.languages.map(languageName).join(", ")}` : "";
}
