// Calls to the JSON API on the same origin, with the staff key (if any) and German error texts.

import { isNotReady } from "./readiness.js";

const KEY_STORAGE = "matcher.apiKey";

/** The API key kept for this browser tab (sessionStorage), or "". */
export function getKey() {
  try { return window.sessionStorage.getItem(KEY_STORAGE) || ""; } catch { return ""; }
}

export function setKey(key) {
  try {
    if (key) window.sessionStorage.setItem(KEY_STORAGE, key); else window.sessionStorage.removeItem(KEY_STORAGE);
  } catch { /* storage switched off: the key lives only until the page is reloaded */ }
  document.dispatchEvent(new CustomEvent("matcher:key-changed"));
}

/** This page's tab token (from the server, one per page load): without a key, feedback is bound to it. */
function tabToken() {
  try { return JSON.parse(document.getElementById("page-data").textContent).tabToken || ""; } catch { return ""; }
}

function headers(extra) {
  const h = { Accept: "application/json", ...extra };
  const key = getKey();
  if (key) h.Authorization = `Bearer ${key}`;
  const tab = tabToken();
  if (tab) h["X-Matcher-Tab"] = tab;
  return h;
}

/**
 * Call the API. Never throws: answers {ok, status, data, response}; on failure `error` holds
 * the API's error object ({code, message, details}) or one made up for a network failure.
 */
export async function callApi(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
                 credentials: "same-origin" };
  if (body !== undefined) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, error: { code: "network", message: "Der Dienst ist gerade nicht erreichbar. Bitte prüfen Sie die Verbindung und versuchen Sie es noch einmal.", details: [] } };
  }
  let data = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) {
    try { data = await response.json(); } catch { data = null; }
  }
  if (response.ok) return { ok: true, status: response.status, data, response };
  const error = (data && data.error) || { code: `http_${response.status}`, message: `Der Dienst antwortete mit Status ${response.status}.`, details: [] };
  notReady(response.status, error);
  return { ok: false, status: response.status, error, response };
}

/** The service is starting (another worker than the one that served the page): the page shows it. */
function notReady(status, error) {
  if (isNotReady(status, error)) document.dispatchEvent(new CustomEvent("matcher:not-ready"));
}

/** Fetch a file (export, report) with the key; answers {ok, blob, filename} or {ok: false, error}. */
export async function fetchFile(path, fallbackName) {
  let response;
  try {
    response = await fetch(path, { headers: headers({}), credentials: "same-origin" });
  } catch {
    return { ok: false, status: 0, error: { code: "network", message: "Der Dienst ist gerade nicht erreichbar.", details: [] } };
  }
  if (!response.ok) {
    let error = { code: `http_${response.status}`, message: `Der Dienst antwortete mit Status ${response.status}.`, details: [] };
    try { error = (await response.json()).error || error; } catch { /* not JSON */ }
    notReady(response.status, error);
    return { ok: false, status: response.status, error };
  }
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  return { ok: true, status: response.status, blob: await response.blob(),
           filename: match ? decodeURIComponent(match[1]) : fallbackName };
}

/** Save a blob as a file via a temporary download link. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** A German hint to put in front of the API's message, by status. */
export function statusHint(status, what) {
  if (status === 401) return `Für ${what} ist ein API-Schlüssel nötig. Bitte unten unter „Zugang für Mitarbeitende“ einen gültigen Schlüssel eingeben.`;
  if (status === 403) return `Ihr Schlüssel reicht für ${what} nicht aus.`;
  if (status === 429) return "Zu viele Anfragen in kurzer Zeit. Bitte warten Sie einen Moment und versuchen Sie es dann noch einmal.";
  if (status === 503) return "Der Dienst ist gerade nicht bereit. Bitte versuchen Sie es in einigen Sekunden noch einmal.";
  if (status >= 500) return "Im Dienst ist ein Fehler aufgetreten.";
  return "";
}
