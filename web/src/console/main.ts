// The web console: a hash-routed single page. Each route is one page module under pages/.

import { ApiClient, ApiError, rememberNext } from "../net/api";
import { ConsoleEvents } from "../net/console-events";
import { Layout, type NavItem } from "../ui/layout";
import type { Ctx, Page } from "./context";
import { auditPage } from "./pages/audit";
import { codesPage } from "./pages/codes";
import { loginPage, passwordPage } from "./pages/login";
import { machinePage } from "./pages/machine";
import { machinesPage } from "./pages/machines";
import { sessionsPage } from "./pages/sessions";
import { tenantsPage } from "./pages/tenants";
import { usersPage } from "./pages/users";
import { can, type Me } from "./session";

const ROUTES: Record<string, Page> = {
  login: loginPage,
  password: passwordPage,
  machines: machinesPage,
  machine: machinePage,
  codes: codesPage,
  sessions: sessionsPage,
  users: usersPage,
  tenants: tenantsPage,
  audit: auditPage,
};

const NAV: NavItem[] = [
  { href: "#/machines", label: "Machines", permission: "view" },
  { href: "#/sessions", label: "Sessions", permission: "view" },
  { href: "#/codes", label: "Support codes", permission: "support_codes" },
  { href: "#/users", label: "Users", permission: "manage_users" },
  { href: "#/tenants", label: "Tenants", permission: "manage_tenants" },
  { href: "#/audit", label: "Audit log", permission: "audit" },
  { href: "#/password", label: "Change password" },
];

function parseHash(): { route: string; param: string | undefined } {
  const [route = "", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { route, param: rest.length ? rest.join("/") : undefined };
}

const api = new ApiClient();
const root = document.getElementById("app");
if (!root) throw new Error("console: #app missing");
const layout = new Layout(root);

const ctx: Ctx = {
  api,
  layout,
  me: null,
  async refresh() {
    ctx.me = api.token ? await api.get<Me>("/api/me").catch(() => null) : null;
    await render();
  },
  go(hash: string) {
    if (location.hash === hash) void render();
    else location.hash = hash;
  },
  onEvent: null,
};

// Live updates: pages showing machines or sessions re-render (at most every 300 ms) when
// something changes; a page with its own handler (support codes) gets the events instead.
const LIVE_ROUTES = new Set(["machines", "machine", "sessions"]);
const events = new ConsoleEvents(() => api.token);
let rerender: number | undefined;
events.on((event) => {
  if (event.kind === "ready") return;
  if (ctx.onEvent) return ctx.onEvent(event);
  if (!LIVE_ROUTES.has(parseHash().route)) return;
  window.clearTimeout(rerender);
  rerender = window.setTimeout(() => {
    layout.liveUpdate(); // the technician keeps their place: focus and what they typed stay
    void render();
  }, 300);
});

async function logout(): Promise<void> {
  await api.post("/api/auth/logout").catch(() => undefined);
  api.token = null;
  ctx.me = null;
  layout.say("Signed out.");
  ctx.go("#/login");
}

async function render(): Promise<void> {
  ctx.onEvent = null;
  if (ctx.me) events.start();
  else events.stop();
  let { route, param } = parseHash();
  if (!ctx.me && route && route !== "login") rememberNext(`/${location.hash}`);
  if (!ctx.me) route = "login";
  else if (!ROUTES[route] || route === "login") route = "machines";
  const items = ctx.me ? NAV.filter((item) => !item.permission || can(ctx.me, item.permission)) : [];
  layout.setNav(items, `#/${route}`, ctx.me ? () => void logout() : null);
  const page = ROUTES[route] ?? loginPage;
  try {
    await page(ctx, param);
  } catch (error) {
    const message = error instanceof ApiError ? error.message : String(error);
    layout.show("Something went wrong", document.createTextNode(message));
    layout.say(message, "error");
  }
}

api.onLoggedOut(() => {
  ctx.me = null;
  layout.say("Your sign-in expired or was revoked. Please sign in again.", "error");
  ctx.go("#/login");
});
window.addEventListener("hashchange", () => {
  layout.loading();
  void render();
});
layout.loading();
void ctx.refresh();
