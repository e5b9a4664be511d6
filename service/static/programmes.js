// "Förderung finden": a project idea → programmes with the checklist of their conditions (✓ ✗ ? •), the next
// deadline, partners and advisors for the application; then the programmes a rule excludes, with that rule.

import { callApi } from "./api.js";
import { checkControls, clearErrors, el, formatDate, reportInvalid, showApiError, whileBusy } from "./ui.js";

function requestBody(form) {
  const f = form.elements;
  const body = { text: f.text.value.trim(), k: 10, lang: "de" };
  if (f.applicant_type.value) body.applicant_type = f.applicant_type.value;
  if (f.registered.checked) body.registered = true;
  for (const name of ["years", "amount", "own_share"]) {
    if (f[name].value.trim() !== "") body[name] = Number(f[name].value);
  }
  if (f.abroad.value) body.abroad = f.abroad.value === "true";
  const city = f.city.value.trim();
  if (city) body.city = city;
  const country = f.partner_country.value.trim();
  if (country) body.partner_country = country;
  if (f.start.value) body.start = f.start.value;
  return body;
}

function checklist(rules, label) {
  return el("ul", { class: "checklist", "aria-label": label },
    ...rules.map((r) => el("li", { class: `rule rule-${r.status}`, "data-status": r.status, text: r.line })));
}

function suggestions(title, items) {
  if (!items.length) return null;
  return el("div", { class: "suggestions" }, el("h4", { text: title }),
    el("ul", {}, ...items.map((s) => el("li", { text: `${s.name}: ${s.reason}` }))));
}

function programmeCard(r, excluded) {
  const p = r.programme;
  const headingId = `programme-${p.id}-${excluded ? "x" : "ok"}`;
  const deadline = r.next_deadline ? `Nächste Frist: ${formatDate(r.next_deadline)}` : "";
  const meta = [p.funder, deadline, p.example ? `Beispieldaten (Stand ${formatDate(p.retrieved)})` : ""]
    .filter(Boolean).join(" · ");
  return el("article", { class: "card", "aria-labelledby": headingId, "data-entity-id": p.id },
    el("h4", { id: headingId, text: `${r.rank}. ${p.name}` }),
    el("p", { class: "meta", text: meta }),
    excluded ? checklist(r.excluded_by, `Ausschlussgründe für ${p.name}`)
      : checklist(r.rules, `Förderbedingungen von ${p.name}`),
    excluded ? null : suggestions("Mögliche Partner", r.partners),
    excluded ? null : suggestions("Beratung für den Antrag", r.advisors));
}

export function initProgrammes() {
  const form = document.getElementById("programme-form");
  const region = document.getElementById("programme-results");
  const list = document.getElementById("programme-list");
  const excluded = document.getElementById("programme-excluded");
  const status = document.getElementById("programme-status");
  const headings = [document.getElementById("programme-eligible-heading"),
    document.getElementById("programme-excluded-heading")];

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const problems = checkControls(form, { "programme-text": "Projektidee" });
    if (problems.length) { reportInvalid(form, problems); return; }
    list.replaceChildren();
    excluded.replaceChildren();
    for (const h of headings) h.hidden = true;
    status.textContent = "Suche läuft …";
    const result = await whileBusy(form, region,
      () => callApi("POST", "/v1/recommendations/programmes", requestBody(form)));
    if (!result.ok) {
      status.textContent = "";
      showApiError(form, result, "Empfehlungen");
      return;
    }
    const { eligible, ineligible } = result.data;
    const found = eligible.length === 1 ? "1 passendes Programm" : `${eligible.length} passende Programme, das am besten passende zuerst`;
    status.textContent = eligible.length
      ? `${found}; ${ineligible.length} mit Ausschlussgrund.`
      : "Kein Programm ohne Ausschlussgrund gefunden; die Gründe stehen unten.";
    headings[0].hidden = !eligible.length;
    headings[1].hidden = !ineligible.length;
    list.replaceChildren(...eligible.map((r) => el("li", {}, programmeCard(r, false))));
    excluded.replaceChildren(...ineligible.map((r) => el("li", {}, programmeCard(r, true))));
  });
}
