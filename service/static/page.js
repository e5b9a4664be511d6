// Entry point of the web page (an ES module, loaded deferred: the DOM is ready).

import { initAdvisors } from "./advisors.js";
import { initInvitations } from "./invitations.js";
import { initKey } from "./key.js";
import { initLandscape } from "./landscape.js";
import { initPartners } from "./partners.js";
import { initProgrammes } from "./programmes.js";
import { initReadiness } from "./readiness.js";
import { attachCounters } from "./ui.js";

initKey();
attachCounters();
initAdvisors();
initPartners();
initProgrammes();
initInvitations();
initLandscape();
initReadiness();
