// What every console page gets: the API client, the layout, and the signed-in user.

import type { ApiClient } from "../net/api";
import type { ConsoleEvent } from "../net/console-events";
import { ApiError } from "../net/api";
import type { Layout } from "../ui/layout";
import type { Me } from "./session";

export interface Ctx {
  api: ApiClient;
  layout: Layout;
  me: Me | null;
  /** Re-reads `/api/me` (after login) and re-renders the current route. */
  refresh(): Promise<void>;
  go(hash: string): void;
  /** The current page's handler for live console events (reset on every page render); when
   * none is set, pages that show live state are re-rendered. */
  onEvent: ((event: ConsoleEvent) => void) | null;
}

export type Page = (ctx: Ctx, param: string | undefined) => Promise<void>;

/** Runs an action, reporting a failure instead of throwing: inside `place` (the form or
 * control group the action belongs to) when given, so the error stands next to what caused
 * it; else in the global status region (events that belong to no form). */
export async function attempt(ctx: Ctx, action: () => Promise<void>, place?: HTMLElement): Promise<void> {
  const shown = place?.querySelector<HTMLElement>(":scope > .form-error");
  if (shown) shown.hidden = true;
  try {
    await action();
  } catch (error) {
    const message = error instanceof ApiError ? error.message : String(error);
    if (!place) return ctx.layout.say(message, "error");
    ctx.layout.say(""); // an older toast must not cover the form's own error
    showFormError(place, message);
  }
}

/** The error line at the end of `place` (made once, then reused): read out at once. */
function showFormError(place: HTMLElement, message: string): void {
  let line = place.querySelector<HTMLElement>(":scope > .form-error");
  if (!line) {
    line = document.createElement("p");
    line.className = "form-error";
    line.setAttribute("role", "alert");
    place.append(line);
  }
  line.textContent = message;
  line.hidden = false;
}
