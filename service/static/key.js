// "Zugang für Mitarbeitende": the API key, kept in sessionStorage and checked against the API.

import { callApi, getKey, setKey } from "./api.js";
import { clearErrors, setFieldError, showFormMessage } from "./ui.js";

function describeKey(status) {
  const key = getKey();
  document.body.dataset.hasKey = key ? "true" : "";
  status.textContent = key
    ? "Ein Schlüssel ist gesetzt. Er wird bei jeder Anfrage mitgeschickt und beim Schließen des Fensters vergessen."
    : "Kein Schlüssel gesetzt: öffentliche Ansicht, ohne Kontaktdaten.";
}

export function initKey() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  const status = document.getElementById("api-key-status");
  describeKey(status);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const key = input.value.trim();
    if (!key) {
      setFieldError(input, "API-Schlüssel: bitte eingeben.");
      showFormMessage(form, "Bitte geben Sie einen Schlüssel ein.");
      input.focus();
      return;
    }
    if (key.length > 200 || /\s/.test(key)) {
      setFieldError(input, "API-Schlüssel: ein Schlüssel hat keine Leerzeichen und höchstens 200 Zeichen.");
      input.focus();
      return;
    }
    const previous = getKey();
    setKey(key);
    const check = await callApi("GET", "/v1/entities?limit=1");
    if (check.status === 401) {
      setKey(previous);
      setFieldError(input, `API-Schlüssel: ${check.error.message}`);
      showFormMessage(form, "Dieser Schlüssel wurde nicht angenommen. Bitte prüfen Sie ihn.");
      input.focus();
    } else {
      input.value = "";
      showFormMessage(form, "Der Schlüssel wird verwendet.", [], "info");
    }
    describeKey(status);
  });

  document.getElementById("api-key-forget").addEventListener("click", () => {
    clearErrors(form);
    input.value = "";
    setKey("");
    describeKey(status);
    showFormMessage(form, "Der Schlüssel wurde vergessen.", [], "info");
  });
}
