// The console's entry: the route in the URL hash picks a view, and the header's controls and the
// keyboard shortcuts work the same on every view.

import { available as chartsAvailable } from "./chart.js";
import { linkTo, readHash, replaceParams, timeZone } from "./state.js";
import { clearStatus, showError } from "./ui.js";
import * as commitment from "./views/commitment.js";
import * as equipment from "./views/equipment.js";
import * as forecast from "./views/forecast.js";
import * as overview from "./views/overview.js";
import * as sites from "./views/sites.js";
import * as tariffs from "./views/tariffs.js";

const SITE = /^[0-9]{1,10}$/;
const ROUTES = [
  (s) => s.length === 0 && sites.render,
  (s) => s.length === 1 && overview.render,
  (s) => s.length === 4 && s[1] === "production" && equipment.render,
  (s) => s.length === 4 && s[1] === "forecast" && forecast.render,
  (s) => s.length === 3 && s[1] === "commitment" && commitment.render,
  (s) => s.length === 2 && s[1] === "tariff" && tariffs.render,
];

let current = null;
let renders = 0;

async function route({ focus = false } = {}) {
  const render = ++renders;
  current?.destroy?.();
  current = null;
  clearStatus();
  const { segments, params } = readHash();
  const main = document.getElementById("main");
  main.replaceChildren();
  document.body.dataset.view = "loading";
  updateTzButton();
  if (!chartsAvailable()) showError("The charts library is missing (vendor/uPlot.iife.min.js): `make vendor` puts it there.");
  const view = ROUTES.map((match) => match(segments)).find(Boolean);
  if (!view || (segments.length > 0 && !SITE.test(segments[0]))) {
    showError(`There is no view at ${window.location.hash}.`);
    document.body.dataset.view = "none";
    return;
  }
  try {
    const made = await view(main, { segments, params, tz: timeZone(), site: segments[0] });
    if (render !== renders) {
      made?.destroy?.(); // the reader went elsewhere meanwhile
      return;
    }
    current = made;
    document.body.dataset.view = "ready";
  } catch (error) {
    if (render === renders) {
      showError(error);
      document.body.dataset.view = "error";
    }
  }
  if (focus) main.focus({ preventScroll: true });
}

// --- light and dark: the system's preference until the reader picks one -------------------

function effectiveTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function updateThemeButton() {
  const button = document.getElementById("theme-toggle");
  const dark = effectiveTheme() === "dark";
  button.textContent = dark ? "☾ Dark" : "☀ Light";
  button.setAttribute("aria-pressed", String(dark));
  button.setAttribute("aria-label", "Dark theme");
}

function toggleTheme() {
  const next = effectiveTheme() === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  localStorage.setItem("storecast-theme", next);
  updateThemeButton();
  route(); // the charts take their colours when they are made
}

// --- UTC or local time --------------------------------------------------------------------

function updateTzButton() {
  const button = document.getElementById("tz-toggle");
  const utc = timeZone() === "utc";
  button.textContent = utc ? "UTC" : "Local time";
  button.setAttribute("aria-pressed", String(utc));
  button.setAttribute("aria-label", "Times in UTC");
}

function toggleTz() {
  replaceParams({ tz: timeZone() === "utc" ? "local" : "utc" });
  route();
}

function toggleHelp(show = undefined) {
  const help = document.getElementById("help");
  const visible = show ?? help.hidden;
  help.hidden = !visible;
  document.getElementById("help-toggle").setAttribute("aria-expanded", String(visible));
}

// --- keyboard -------------------------------------------------------------------------------

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Escape") {
    toggleHelp(false);
    return;
  }
  // Keys typed into a control are the control's (a slider's arrows, a select's letters).
  if (event.target.closest?.("input, select, textarea")) return;
  const { segments } = readHash();
  const actions = {
    "?": () => toggleHelp(),
    t: toggleTz,
    d: toggleTheme,
    g: () => (window.location.hash = linkTo([])),
    u: () => segments.length > 1 && (window.location.hash = linkTo([segments[0]])),
  };
  const action = actions[event.key];
  if (action) {
    action();
    event.preventDefault();
  } else if (current?.key?.(event.key)) {
    event.preventDefault();
  }
}

function start() {
  const stored = localStorage.getItem("storecast-theme");
  if (stored === "light" || stored === "dark") document.documentElement.dataset.theme = stored;
  updateThemeButton();
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    if (!document.documentElement.dataset.theme) {
      updateThemeButton();
      route();
    }
  });
  document.getElementById("theme-toggle").addEventListener("click", toggleTheme);
  document.getElementById("tz-toggle").addEventListener("click", toggleTz);
  document.getElementById("help-toggle").addEventListener("click", () => toggleHelp());
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", () => route({ focus: true }));
  route();
}

start();
