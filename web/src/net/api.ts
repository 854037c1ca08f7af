// The one place the console talks HTTP to the Reach server.
//
// The login token lives in localStorage (shared by this origin's tabs, so a viewer link opens in
// any tab of a signed-in browser; removed from every tab at logout) and travels only in the
// Authorization header — never in a URL or a cookie, so state-changing requests cannot be forged
// cross-site. docs/security.md weighs this against per-tab storage.

const TOKEN_KEY = "reach.login_token";
const NEXT_KEY = "reach.next";

/** Remembers (in this tab) where to return after signing in: a same-origin path only. */
export function rememberNext(path: string): void {
  if (path.startsWith("/") && !path.startsWith("//")) sessionStorage.setItem(NEXT_KEY, path);
}

/** Where to return after signing in, once; `null` when nothing was asked for. */
export function takeNext(): string | null {
  const next = sessionStorage.getItem(NEXT_KEY);
  sessionStorage.removeItem(NEXT_KEY);
  return next && next.startsWith("/") && !next.startsWith("//") ? next : null;
}

/** An error answered by the server: HTTP status plus the JSON `{error, message}` body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

type Listener = () => void;

/** REST client for `/api/*`. */
export class ApiClient {
  private loggedOutListeners: Listener[] = [];

  get token(): string | null {
    return localStorage.getItem(TOKEN_KEY);
  }

  set token(value: string | null) {
    if (value === null) localStorage.removeItem(TOKEN_KEY);
    else localStorage.setItem(TOKEN_KEY, value);
  }

  /** Called when the server says the token is no longer valid, or another tab signed out. */
  onLoggedOut(listener: Listener): void {
    this.loggedOutListeners.push(listener);
    window.addEventListener("storage", (event) => {
      if (event.key === TOKEN_KEY && event.newValue === null) listener();
    });
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const token = this.token;
    if (token) headers["Authorization"] = `Bearer ${token}`;
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "network", "The server cannot be reached. Check your connection and try again.");
    }
    if (response.status === 401 && token) {
      this.token = null;
      for (const listener of this.loggedOutListeners) listener();
    }
    if (!response.ok) throw await toApiError(response);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, body ?? {});
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PATCH", path, body);
  }
  delete<T>(path: string): Promise<T> {
    return this.request<T>("DELETE", path);
  }
}

async function toApiError(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || "Request failed";
  try {
    const body = (await response.json()) as { error?: unknown; message?: unknown };
    if (typeof body.error === "string") code = body.error;
    if (typeof body.message === "string") message = body.message;
  } catch {
    // Not JSON: keep the status line.
  }
  if (response.status === 429) {
    const retry = response.headers.get("Retry-After");
    if (retry) message = `${message} Try again in ${retry} s.`;
  }
  return new ApiError(response.status, code, message);
}

/** Builds a query string from the defined, non-empty values. */
export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
