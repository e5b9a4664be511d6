// "Landschaftsbericht": open the HTML report for a place in a new tab.
// The report is fetched first, so that a place the API does not know is explained here, in the
// form, and not as a JSON answer in a new tab. A key cannot travel with a link: with a key the
// fetched report is saved as a file instead.

import { fetchFile, getKey, saveBlob } from "./api.js";
import { checkControls, clearErrors, el, reportInvalid, showApiError } from "./ui.js";

export function initLandscape() {
  const form = document.getElementById("landscape-form");
  const status = document.getElementById("landscape-status");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    status.textContent = "";
    const problems = checkControls(form, { "landscape-city": "Ort", "landscape-radius": "Umkreis" });
    if (problems.length) { reportInvalid(form, problems); return; }
    const place = form.elements.city.value.trim();
    const params = new URLSearchParams({ city: place });
    const radius = form.elements.radius_km.value.trim();
    if (radius) params.set("radius_km", radius);
    const url = `${form.action}?${params}`;
    status.textContent = "Der Bericht wird erstellt …";
    const file = await fetchFile(url, `landschaftsbericht-${place}.html`);
    if (!file.ok) { status.textContent = ""; showApiError(form, file, "den Landschaftsbericht"); return; }
    if (getKey()) {
      saveBlob(file.blob, file.filename);
      status.textContent = `Der Bericht wurde als Datei „${file.filename}“ gespeichert; öffnen Sie sie im Browser.`;
      return;
    }
    const opened = window.open(url, "_blank");
    if (opened) opened.opener = null;
    status.replaceChildren(opened ? "Der Bericht ist in einem neuen Tab geöffnet. " : "",
      el("a", { href: url, target: "_blank", rel: "noopener", text: `Landschaftsbericht ${place} öffnen` }));
  });
}
