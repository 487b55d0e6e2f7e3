// Small DOM helpers: elements, the status line, the breadcrumbs.

/** An element: el("a", {href: "#/"}, "text", child, …); attributes starting with "on" become listeners. */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function showError(error) {
  const status = document.getElementById("status");
  status.textContent = error instanceof Error ? error.message : String(error);
  console.warn(error);
}

export function clearStatus() {
  document.getElementById("status").textContent = "";
}

/** The breadcrumbs: [text, href] pairs, the last one the current view (no link). */
export function setCrumbs(items) {
  const nav = document.getElementById("crumbs");
  nav.replaceChildren(
    ...items.flatMap(([text, href], index) => {
      const last = index === items.length - 1;
      const item = last ? el("span", { "aria-current": "page" }, text) : el("a", { href }, text);
      return index === 0 ? [item] : [" › ", item];
    }),
  );
}

/** A <select> of [value, text] options, `selected` chosen, calling onChange(value). */
export function select(label, options, selected, onChange, id = undefined) {
  const control = el(
    "select",
    { id, onchange: (event) => onChange(event.target.value) },
    options.map(([value, text]) => el("option", { value, selected: value === selected }, text)),
  );
  return el("label", {}, label, control);
}

/** The toolbar buttons of a time chart: pan, zoom, reset (their shortcuts in the title). */
export function rangeButtons(chart) {
  return el(
    "span",
    { class: "group", role: "group", "aria-label": "Time range" },
    el("button", { type: "button", title: "Pan left (←)", onclick: () => chart().pan(-0.25) }, "◀"),
    el("button", { type: "button", title: "Zoom in (+)", onclick: () => chart().zoom(0.5) }, "+"),
    el("button", { type: "button", title: "Zoom out (−)", onclick: () => chart().zoom(2) }, "−"),
    el("button", { type: "button", title: "Pan right (→)", onclick: () => chart().pan(0.25) }, "▶"),
    el("button", { type: "button", title: "Reset the zoom (0)", onclick: () => chart().reset() }, "Reset"),
  );
}

/**
 * A slider over vintages (ascending creation timestamps) with the chosen one's time beside it.
 * `onChoose(index)` hears each choice, a burst of arrow keys or a drag once, when it settles.
 */
export function vintageSlider(vintages, index, describe, onChoose) {
  const output = el("output", { id: "vintage-label", for: "vintage" });
  const slider = el("input", {
    type: "range", id: "vintage", min: 0, max: Math.max(0, vintages.length - 1), step: 1, value: index,
    "aria-label": "Vintage (creation time)",
  });
  let chosen = index;
  let timer = null;
  const show = () => {
    const text = `${describe(vintages[chosen])} (${chosen + 1} of ${vintages.length})`;
    output.textContent = text;
    slider.setAttribute("aria-valuetext", text);
  };
  const choose = (next) => {
    chosen = Math.max(0, Math.min(vintages.length - 1, next));
    slider.value = String(chosen);
    show();
    clearTimeout(timer);
    timer = setTimeout(() => onChoose(chosen), 120);
  };
  slider.addEventListener("input", () => choose(Number(slider.value)));
  show();
  return {
    element: el("span", { class: "group" }, el("label", {}, "Vintage ", slider), output),
    index: () => chosen,
    step: (delta) => choose(chosen + delta),
    destroy: () => clearTimeout(timer),
  };
}

/** Appends the children that are there (null and false stand for "nothing here"). */
export function fill(parent, ...children) {
  parent.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}
