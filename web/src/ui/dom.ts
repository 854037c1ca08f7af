// Tiny DOM helpers. Text always goes through textContent, never innerHTML, so data from the
// server (machine names, audit details) can never inject markup.

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | boolean | EventListener | undefined>;

/** Creates an element with attributes (`on*` keys become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") {
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) {
      element.setAttribute(key, "");
    } else {
      element.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

/** A labelled form field; the label is bound to the input for screen readers. */
export function field(label: string, input: HTMLInputElement | HTMLSelectElement): HTMLElement {
  if (!input.id) input.id = `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
}

/** A table with a caption, header row and body rows. */
export function table(caption: string, headers: string[], rows: Child[][]): HTMLElement {
  const element = h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...headers.map((text) => h("th", { scope: "col" }, text)))),
    h(
      "tbody",
      {},
      // On a narrow screen each row becomes a card: every cell names its column (data-label).
      ...rows.map((cells) => h("tr", {}, ...cells.map((cell, i) => h("td", { "data-label": headers[i] || undefined }, cell)))),
    ),
  );
  return h("div", { class: "table-wrap" }, element);
}

/** Formats an RFC 3339 string or epoch milliseconds for display. */
export function when(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === "") return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}
