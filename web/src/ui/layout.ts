// The console frame: skip link, navigation, a main region that receives focus on every route
// change (so screen readers announce the new page), and a polite live region for status.

import { h } from "./dom";

export interface NavItem {
  href: string;
  label: string;
  /** Permission needed to see the item; undefined = every signed-in user. */
  permission?: string;
}

export class Layout {
  readonly main: HTMLElement;
  private readonly nav: HTMLElement;
  private readonly status: HTMLElement;

  private readonly menu: HTMLButtonElement;

  constructor(root: HTMLElement) {
    this.nav = h("nav", { id: "nav", "aria-label": "Main" });
    this.main = h("main", { id: "main", tabindex: "-1" });
    this.status = h("div", { id: "status", role: "status", "aria-live": "polite" });
    // On a narrow screen the navigation folds behind a Menu button (CSS shows it there only).
    this.menu = h("button", { type: "button", class: "menu", "aria-controls": "nav", "aria-expanded": "false" }, "Menu");
    this.menu.addEventListener("click", () => this.toggleMenu(this.menu.getAttribute("aria-expanded") !== "true"));
    root.replaceChildren(
      h("a", { class: "skip", href: "#main" }, "Skip to content"),
      h("header", {}, h("span", { class: "brand" }, "Reach"), this.menu, this.nav),
      this.status,
      this.main,
    );
  }

  private toggleMenu(open: boolean): void {
    this.menu.setAttribute("aria-expanded", String(open));
    this.nav.classList.toggle("open", open);
  }

  /** Shows the navigation the user may use, marking the current page. */
  setNav(items: NavItem[], current: string, onLogout: (() => void) | null): void {
    const links = items.map((item) =>
      h(
        "a",
        { href: item.href, "aria-current": current.startsWith(item.href) ? "page" : undefined },
        item.label,
      ),
    );
    const logout = onLogout ? h("button", { type: "button", onclick: onLogout }, "Log out") : null;
    this.nav.replaceChildren(...links, logout ?? "");
    this.menu.hidden = items.length === 0;
    this.toggleMenu(false);
  }

  private loadingTimer: number | undefined;
  private toastTimer: number | undefined;

  /** A new page is on its way: after a short moment without it, say "Loading…". */
  loading(): void {
    window.clearTimeout(this.loadingTimer);
    this.live = false; // a new page, not a redraw
    this.main.setAttribute("aria-busy", "true");
    this.loadingTimer = window.setTimeout(() => {
      this.main.replaceChildren(h("p", { class: "loading" }, "Loading…"));
    }, 150);
  }

  private live = false;

  /** The next `show` redraws the same page with fresh data (a live update), not a new page. */
  liveUpdate(): void {
    this.live = true;
  }

  /** Replaces the page content and moves focus to it; a live update instead leaves focus
   * (and the text of the focused field) where the technician had it. */
  show(title: string, ...content: (Node | string)[]): void {
    window.clearTimeout(this.loadingTimer);
    this.main.removeAttribute("aria-busy");
    document.title = `${title} · Reach`;
    const live = this.live;
    this.live = false;
    const active = document.activeElement;
    const kept = live && active instanceof HTMLElement && active.id && this.main.contains(active) ? active : null;
    this.main.replaceChildren(h("h1", {}, title), ...content);
    if (kept) restoreFocus(kept);
    else if (!live) this.main.focus();
  }

  /** Announces a message; errors are styled and read out. */
  say(message: string, kind: "info" | "error" = "info"): void {
    this.status.className = kind;
    this.status.textContent = message;
    // A toast: information goes away by itself, errors stay until the next message.
    window.clearTimeout(this.toastTimer);
    if (kind === "info") this.toastTimer = window.setTimeout(() => (this.status.textContent = ""), 6000);
  }
}

/** Focuses the redrawn element with the id `before` had, with the text it held. */
function restoreFocus(before: HTMLElement): void {
  const again = document.getElementById(before.id);
  if (!again) return;
  if (before instanceof HTMLInputElement && again instanceof HTMLInputElement) {
    again.value = before.value;
    again.focus();
    try {
      again.setSelectionRange(before.selectionStart, before.selectionEnd);
    } catch {
      // Not a text field (checkbox…): nothing to select.
    }
    return;
  }
  again.focus();
}
