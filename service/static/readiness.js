// Is the service ready? While it starts (or after its start failed) /readyz answers 503 with the
// progress in German; this asks again every two seconds until it answers 200.

const POLL_MS = 2000;
const NOT_READY = new Set(["starting", "start_failed"]);

/** Is an API answer the service saying that it is not ready (yet)? */
export function isNotReady(status, error) {
  return status === 503 && Boolean(error) && NOT_READY.has(error.code);
}

/** The German status line for a /readyz error object. */
export function readinessText(error) {
  if (error.code === "starting") return `${error.message} – die Suche ist möglich, sobald er bereit ist.`;
  if (error.code === "start_failed") return error.message;
  return `Der Dienst ist gerade nicht bereit: ${error.message}`;
}

/**
 * Ask /readyz now and then every two seconds until it answers 200: `onState(error)` after each other
 * answer (the API's error object, or one made up when the service cannot be reached), `onReady()` at the end.
 */
export function watchReadiness({ onState, onReady }) {
  const ask = async () => {
    let response = null;
    let error = null;
    try {
      response = await fetch("/readyz", { headers: { Accept: "application/json" }, cache: "no-store",
                                          credentials: "same-origin" });
    } catch {
      error = { code: "network", message: "Der Dienst ist gerade nicht erreichbar.", details: [] };
    }
    if (response && response.ok) { onReady(); return; }
    if (response) {
      try { error = (await response.json()).error; } catch { error = null; }
      error = error || { code: `http_${response.status}`, message: `Status ${response.status}.`, details: [] };
    }
    onState(error);
    window.setTimeout(ask, POLL_MS);
  };
  ask();
}

/** Set a status line's text only when it changes (a live region announces every change). */
export function setStatus(line, text, problem = false) {
  if (line.textContent !== text) line.textContent = text;
  line.classList.toggle("problem", problem);
}

/**
 * The full page: on load, and whenever an API call answers "starting", show the start's progress in
 * the status line and keep the search buttons disabled until /readyz answers 200; then clear the line.
 */
export function initReadiness() {
  const line = document.getElementById("service-status");
  const buttons = [...document.querySelectorAll("form[data-needs-matcher] button[type='submit']")];
  let watching = false;
  const setReady = (ready) => {
    if (ready) delete document.body.dataset.notReady; else document.body.dataset.notReady = "true";
    for (const button of buttons) button.disabled = !ready;
  };
  const watch = () => {
    if (watching) return;
    watching = true;
    watchReadiness({
      onState: (error) => { setReady(false); setStatus(line, readinessText(error), error.code !== "starting"); },
      onReady: () => { watching = false; setStatus(line, ""); setReady(true); },
    });
  };
  document.addEventListener("matcher:not-ready", () => { setReady(false); watch(); });
  watch();
}
