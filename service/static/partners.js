// "Partner und Veranstaltungen finden": an organisation from the catalog or described → partners and events.

import { callApi, statusHint } from "./api.js";
import {
  PAGE, checkControls, checkedValues, clearErrors, el, formatDate, reportInvalid, resultCard, showApiError,
  showAssessment, whileBusy,
} from "./ui.js";

/** Fill the organisation picker from the catalog (up to 500, optionally only one city). */
async function loadOrganisations(select, status, city) {
  const params = new URLSearchParams({ kind: "organisation", limit: "500" });
  if (city) params.set("city", city);
  status.textContent = "Organisationen werden geladen …";
  const result = await callApi("GET", `/v1/entities?${params}`);
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "", text: "– bitte wählen –" }));
  if (!result.ok) {
    status.textContent = [statusHint(result.status, "die Auswahl aus dem Katalog"), result.error.message,
      "Sie können Ihre Organisation auch selbst beschreiben."].filter(Boolean).join(" ");
    return;
  }
  const items = [...result.data.items].sort((a, b) => a.name.localeCompare(b.name, "de"));
  for (const org of items) {
    select.append(el("option", { value: org.id, text: `${org.name} (${org.city || "ohne Ort"})`, selected: org.id === chosen }));
  }
  const { total } = result.data;
  status.textContent = total > items.length
    ? `${items.length} von ${total} Organisationen gezeigt – bitte nach Ort eingrenzen.`
    : `${items.length} Organisationen${city ? ` in ${city}` : ""} zur Auswahl.`;
}

function profileBody(form) {
  const profile = { description: form.elements["profile.description"].value.trim() };
  const name = form.elements["profile.name"].value.trim();
  const city = form.elements["profile.city"].value.trim();
  const topics = form.elements["profile.topics"].value.split(",").map((t) => t.trim()).filter(Boolean);
  const languages = checkedValues(document.getElementById("partner-describe"), "languages");
  if (name) profile.name = name;
  if (city) profile.city = city;
  if (topics.length) profile.topics = topics;
  if (languages.length) profile.languages = languages;
  const orgType = form.elements["profile.org_type"].value;
  if (orgType) profile.org_type = orgType;
  return profile;
}

function eventFacts(entity) {
  return [entity.date ? `am ${formatDate(entity.date)}` : ""];
}

export function initPartners() {
  const form = document.getElementById("partner-form");
  const region = document.getElementById("partner-results");
  const select = document.getElementById("partner-org");
  const orgStatus = document.getElementById("partner-org-status");
  const filterCity = document.getElementById("partner-org-city");
  const catalogPart = document.getElementById("partner-catalog");
  const describePart = document.getElementById("partner-describe");
  const lists = { partner: document.getElementById("partner-list"), event: document.getElementById("event-list") };
  const statuses = { partner: document.getElementById("partner-status"), event: document.getElementById("event-status") };

  const mode = () => form.elements.mode.value;
  for (const radio of form.querySelectorAll("input[name='mode']")) {
    radio.addEventListener("change", () => {
      catalogPart.hidden = mode() !== "catalog";
      describePart.hidden = mode() !== "describe";
      clearErrors(form);
    });
  }
  const reload = () => loadOrganisations(select, orgStatus, filterCity.value.trim());
  filterCity.addEventListener("change", reload);
  document.addEventListener("matcher:key-changed", reload);
  reload();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const problems = checkControls(form, { "partner-org-city": "Ort", "partner-name": "Name",
      "partner-description": "Beschreibung", "partner-topics": "Themen", "partner-city": "Ort" });
    if (mode() === "catalog" && !select.value) problems.unshift([select, "Organisation: bitte auswählen."]);
    const profile = mode() === "describe" ? profileBody(form) : null;
    if (profile && !profile.description && !profile.topics) {
      problems.unshift([form.elements["profile.description"],
        "Beschreibung: bitte beschreiben Sie Ihre Organisation (oder nennen Sie wenigstens Themen)."]);
    }
    if (problems.length) { reportInvalid(form, problems); return; }

    const k = Number(form.elements.k.value);
    const orgTypes = checkedValues(form, "org_types");
    const partnerBody = { k, lang: "de", ...(orgTypes.length ? { org_types: orgTypes } : {}),
                          ...(profile ? { profile } : { organisation: select.value }) };
    for (const key of ["partner", "event"]) {
      lists[key].replaceChildren();
      showAssessment(lists[key], null);
      statuses[key].textContent = "Suche läuft …";
    }

    await whileBusy(form, region, async () => {
      const [partners, events] = await Promise.all([
        callApi("POST", "/v1/recommendations/partners", partnerBody),
        // a described organisation gets events too: its profile stands for the catalog entry
        callApi("POST", "/v1/recommendations/events", { ...(profile ? { profile } : { organisation: select.value }), k, lang: "de" }),
      ]);
      const failed = [partners, events].find((r) => r && !r.ok);
      if (failed) {
        statuses.partner.textContent = statuses.event.textContent = "";
        showApiError(form, failed, "Empfehlungen");
      }
      if (partners.ok) {
        const results = partners.data.results;
        showAssessment(lists.partner, partners.data.assessment);
        statuses.partner.textContent = results.length ? `${results.length} mögliche Partner.` : "Keine passenden Partner gefunden.";
        lists.partner.replaceChildren(...results.map((r) => el("li", {}, resultCard(r, {
          facts: [r.entity.kind === "municipality" ? "Kommune" : PAGE.orgTypes[r.entity.org_type] || ""],
          headingLevel: "h4" }))));
      }
      if (events.ok) {
        const results = events.data.results;
        showAssessment(lists.event, events.data.assessment);
        statuses.event.textContent = results.length ? `${results.length} anstehende Veranstaltungen.` : "Keine anstehenden Veranstaltungen gefunden.";
        lists.event.replaceChildren(...results.map((r) => el("li", {}, resultCard(r, { facts: eventFacts(r.entity), headingLevel: "h4" }))));
      }
    });
  });
  // a described organisation needs no selection: keep the select's error from lingering
  select.addEventListener("change", () => { if (select.value) select.removeAttribute("aria-invalid"); });
}
