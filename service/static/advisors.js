// "Beratung finden": need, place, languages → advisor cards with reasons and "passt / passt nicht".

import { callApi, statusHint } from "./api.js";
import {
  PAGE, checkControls, checkedValues, clearErrors, el, languagesFact, reportInvalid, resultCard, showApiError,
  showAssessment, whileBusy,
} from "./ui.js";

const OUTCOME_TEXT = { accepted: "passt", declined: "passt nicht" };

function feedbackControls(recommendationId, entity) {
  const status = el("p", { role: "status" });
  const buttons = Object.entries(OUTCOME_TEXT).map(([outcome, label]) => {
    const button = el("button", { type: "button", class: "secondary", "aria-pressed": "false", "data-outcome": outcome },
      label, el("span", { class: "visually-hidden", text: ` – ${entity.name}` }));
    button.addEventListener("click", async () => {
      for (const b of buttons) b.disabled = true;
      status.className = "";
      status.textContent = "Rückmeldung wird gespeichert …";
      const result = await callApi("POST", "/v1/feedback",
        { recommendation_id: recommendationId, entity_id: entity.id, outcome });
      if (result.ok) {
        button.setAttribute("aria-pressed", "true");
        status.className = "ok";
        status.textContent = `Danke! Ihre Rückmeldung „${label}“ ist gespeichert.`;
        return;
      }
      for (const b of buttons) b.disabled = false;
      status.className = "problem";
      status.textContent = [statusHint(result.status, "Rückmeldungen"), result.error.message].filter(Boolean).join(" ");
    });
    return button;
  });
  return el("div", { class: "feedback", role: "group", "aria-label": `Rückmeldung zu ${entity.name}` }, ...buttons, status);
}

function requestBody(form) {
  const body = { text: form.elements.text.value.trim(), k: Number(form.elements.k.value), lang: "de" };
  const city = form.elements.city.value.trim();
  if (city) body.city = city;
  const languages = checkedValues(form, "languages");
  if (languages.length) body.languages = languages;
  if (form.elements.require_languages.checked) body.require_languages = true;
  return body;
}

export function initAdvisors() {
  const form = document.getElementById("advisor-form");
  const region = document.getElementById("advisor-results");
  const list = document.getElementById("advisor-list");
  const status = document.getElementById("advisor-status");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const problems = checkControls(form, { "advisor-text": "Bedarf", "advisor-city": "Ort" });
    if (form.elements.require_languages.checked && !checkedValues(form, "languages").length) {
      problems.push([form.querySelector("fieldset[data-field='languages']"),
        "Sprachen: bitte mindestens eine Sprache wählen oder „Nur Personen, die alle gewählten Sprachen sprechen“ abwählen."]);
    }
    if (problems.length) { reportInvalid(form, problems); return; }
    list.replaceChildren();
    showAssessment(list, null);
    status.textContent = "Suche läuft …";
    const result = await whileBusy(form, region, () => callApi("POST", "/v1/recommendations/advisors", requestBody(form)));
    if (!result.ok) {
      status.textContent = "";
      showApiError(form, result, "Empfehlungen");
      return;
    }
    const { id, results, assessment } = result.data;
    showAssessment(list, assessment);
    status.textContent = results.length
      ? `${results.length} Vorschläge, ${assessment && assessment.nothing_fits ? "der nächstliegende" : "der am besten passende"} zuerst.`
      : "Keine passende Beratung gefunden. Versuchen Sie andere Worte oder weniger Sprachen.";
    list.replaceChildren(...results.map((r) => {
      const card = resultCard(r, { facts: [languagesFact(r.entity)] });
      card.append(feedbackControls(id, r.entity));
      return el("li", {}, card);
    }));
    if (!PAGE.openFeedback && !document.body.dataset.hasKey) {
      status.textContent += " Rückmeldungen („passt / passt nicht“) brauchen einen Schlüssel mit der Rolle editor.";
    }
  });
}
