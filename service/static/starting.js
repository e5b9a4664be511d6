// The page shown while the service starts: the start's progress, asked for every two seconds;
// once the service is ready, the full page is loaded in its place.

import { readinessText, setStatus, watchReadiness } from "./readiness.js";

const line = document.getElementById("service-status");
const box = document.getElementById("start-progress-box");
const bar = document.getElementById("start-progress");

watchReadiness({
  onState: (error) => {
    const progress = (error.details || [])[0] || {};
    setStatus(line, readinessText(error), error.code !== "starting");
    box.hidden = progress.stage !== "encoding";
    if (progress.stage === "encoding") {
      bar.max = Math.max(1, progress.total);
      bar.value = progress.done;
    }
  },
  onReady: () => window.location.reload(),
});
