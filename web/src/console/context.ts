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

/** Runs an action, reporting a failure in the status region instead of throwing. */
export async function attempt(ctx: Ctx, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    const message = error instanceof ApiError ? error.message : String(error);
    ctx.layout.say(message, "error");
  }
}
