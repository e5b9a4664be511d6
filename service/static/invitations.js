// "Einladungsliste" (staff, with key): event, size, quotas → a batch job on /v1/jobs/invitations,
// polled for its progress; then the list, the constraint report and the XLSX/CSV export.

import { callApi, fetchFile, getKey, saveBlob, statusHint } from "./api.js";
import { PAGE, checkControls, clearErrors, el, formatDate, reportInvalid, showApiError, showFormMessage } from "./ui.js";

const POLL_MS = 400;
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Fill the event picker: coming events first (by date), past ones in their own group. */
async function loadEvents(select, status) {
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "", text: "– bitte wählen –" }));
  if (!getKey()) {
    status.textContent = "Bitte zuerst unten unter „Zugang für Mitarbeitende“ einen Schlüssel eingeben.";
    return;
  }
  status.textContent = "Veranstaltungen werden geladen …";
  const result = await callApi("GET", "/v1/entities?kind=event&limit=500");
  if (!result.ok) {
    status.textContent = [statusHint(result.status, "die Veranstaltungen"), result.error.message].filter(Boolean).join(" ");
    return;
  }
  const today = new Date().toISOString().slice(0, 10);
  const events = [...result.data.items].sort((a, b) => (a.date || "").localeCompare(b.date || ""));
  const coming = el("optgroup", { label: "Anstehend" });
  const past = el("optgroup", { label: "Vergangen" });
  for (const event of events) {
    const label = `${event.date ? `${formatDate(event.date)}: ` : ""}${event.name}${event.city ? ` (${event.city})` : ""}`;
    (event.date && event.date < today ? past : coming)
      .append(el("option", { value: event.id, text: label, selected: event.id === chosen }));
  }
  for (const group of [coming, past]) if (group.children.length) select.append(group);
  status.textContent = `${events.length} Veranstaltungen zur Auswahl.`;
}

function quotas(form) {
  const specs = [];
  for (const input of form.querySelectorAll("[data-quota-group]")) {
    const value = input.value.trim();
    if (value === "") continue;
    specs.push(input.dataset.quotaBound === "min"
      ? `${input.dataset.quotaGroup}:${value}%` : `${input.dataset.quotaGroup}:<=${value}`);
  }
  return specs;
}

function requestBody(form) {
  const body = { event: form.elements.event.value, size: Number(form.elements.size.value) };
  const specs = quotas(form);
  if (specs.length) body.quotas = specs;
  if (form.elements.max_per_city.value.trim()) body.max_per_city = Number(form.elements.max_per_city.value);
  if (form.elements.waitlist.value.trim()) body.waitlist = Number(form.elements.waitlist.value);
  return body;
}

function groupLabel(invitee) {
  if (invitee.kind === "advisor") return "Beratung";
  return PAGE.orgTypes[invitee.group] || PAGE.orgTypes[invitee.entity?.org_type] || "Organisation";
}

/** One constraint: its label ("mindestens 40 % Migrantenorganisationen") and the library's German verdict. */
function constraintItem(c) {
  const verdict = c.message || (c.held ? "eingehalten" : "nicht eingehalten");
  const label = c.label && !verdict.includes(c.label) ? el("strong", { text: `${c.label}: ` }) : null;
  return el("li", { class: c.held ? "held" : "missed" },
    el("span", { class: "visually-hidden", text: c.held ? "Eingehalten – " : "Nicht eingehalten – " }), label, verdict);
}

function reasonsOf(invitee) {
  return [...(invitee.explanation?.reasons || []), ...(invitee.why || [])];
}

function render(result, parts) {
  parts.heading.textContent = `Einladungsliste: ${result.event.name}${result.event.date ? ` am ${formatDate(result.event.date)}` : ""}`;
  parts.constraints.replaceChildren(...result.constraints.map(constraintItem));
  if (!result.constraints.length) parts.constraints.append(el("li", { class: "held", text: "Keine Vorgaben gesetzt: die am besten passenden Akteure." }));
  parts.list.replaceChildren(...result.invitees.map((i) => el("tr", { "data-entity-id": i.id },
    el("td", { text: String(i.rank) }),
    el("th", { scope: "row", text: i.name }),
    el("td", { text: groupLabel(i) }),
    el("td", { text: i.city || "" }),
    el("td", { text: i.strength_label || "–" }),
    el("td", {}, el("ul", {}, ...reasonsOf(i).map((r) => el("li", { text: r })))))));
  parts.waitlist.replaceChildren(...result.waitlist.map((i) => el("li", { text: `${i.name} (${groupLabel(i)}, ${i.city || "ohne Ort"})` })));
  if (!result.waitlist.length) parts.waitlist.append(el("li", { text: "Keine Warteliste." }));
}

export function initInvitations() {
  const form = document.getElementById("invite-form");
  const select = document.getElementById("invite-event");
  const eventStatus = document.getElementById("invite-event-status");
  const region = document.getElementById("invite-results");
  const box = document.getElementById("invite-progress-box");
  const bar = document.getElementById("invite-progress");
  const progressText = document.getElementById("invite-progress-text");
  const output = document.getElementById("invite-output");
  const downloadStatus = document.getElementById("invite-download-status");
  const parts = { heading: document.getElementById("invite-heading"), constraints: document.getElementById("invite-constraints"),
                  list: document.getElementById("invite-list"), waitlist: document.getElementById("invite-waitlist-list") };
  let jobId = null;

  loadEvents(select, eventStatus);
  document.addEventListener("matcher:key-changed", () => loadEvents(select, eventStatus));

  const download = async (format) => {
    if (!jobId) return;
    downloadStatus.textContent = "Die Datei wird vorbereitet …";
    const path = `/v1/jobs/${encodeURIComponent(jobId)}/export.${format}${format === "csv" ? "?delimiter=%3B" : ""}`;
    const file = await fetchFile(path, `einladungsliste.${format}`);
    if (!file.ok) {
      downloadStatus.textContent = [statusHint(file.status, "den Download"), file.error.message].filter(Boolean).join(" ");
      return;
    }
    saveBlob(file.blob, file.filename);
    downloadStatus.textContent = `Gespeichert als „${file.filename}“.`;
  };
  document.getElementById("invite-download-xlsx").addEventListener("click", () => download("xlsx"));
  document.getElementById("invite-download-csv").addEventListener("click", () => download("csv"));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!getKey()) {
      showFormMessage(form, "Einladungslisten sind für Mitarbeitende: bitte unten unter „Zugang für Mitarbeitende“ einen Schlüssel eingeben.");
      document.getElementById("api-key").focus();
      return;
    }
    const problems = checkControls(form, { "invite-size": "Größe der Liste", "invite-max-city": "Höchstens je Ort",
                                           "invite-waitlist": "Warteliste" });
    if (!select.value) problems.unshift([select, "Veranstaltung: bitte auswählen."]);
    const minShare = [...form.querySelectorAll("[data-quota-bound='min']")].reduce((s, i) => s + Number(i.value || 0), 0);
    if (minShare > 100) {
      problems.push([form.querySelector("fieldset[data-field='quotas']"),
        `Quoten: die Mindestanteile ergeben zusammen ${minShare} % – höchstens 100 % sind möglich.`]);
    }
    if (problems.length) { reportInvalid(form, problems); return; }

    const button = form.querySelector("button[type='submit']");
    button.disabled = true;
    region.setAttribute("aria-busy", "true");
    output.hidden = true;
    jobId = null;
    box.hidden = false;
    bar.value = 0;
    progressText.textContent = "Der Auftrag wird angelegt …";
    try {
      const created = await callApi("POST", "/v1/jobs/invitations", requestBody(form));
      if (!created.ok) { box.hidden = true; showApiError(form, created, "Einladungslisten"); return; }
      let job = created.data;
      while (job.state === "queued" || job.state === "running") {
        bar.value = job.progress || 0;
        progressText.textContent = job.state === "queued" ? "Der Auftrag wartet auf seinen Start …" : `Berechnung läuft: ${Math.round(job.progress || 0)} %`;
        await sleep(POLL_MS);
        const polled = await callApi("GET", `/v1/jobs/${encodeURIComponent(job.id)}`);
        if (!polled.ok) { box.hidden = true; showApiError(form, polled, "den Auftrag"); return; }
        job = polled.data;
      }
      if (job.state !== "done") {
        box.hidden = true;
        showApiError(form, { status: 422, error: job.error || { message: "Der Auftrag ist fehlgeschlagen.", details: [] } }, "Einladungslisten");
        return;
      }
      bar.value = 100;
      progressText.textContent = "Fertig: 100 %";
      jobId = job.id;
      render(job.result, parts);
      output.hidden = false;
      downloadStatus.textContent = "";
      parts.heading.setAttribute("tabindex", "-1");
      parts.heading.focus();
    } finally {
      button.disabled = false;
      region.setAttribute("aria-busy", "false");
    }
  });
}
