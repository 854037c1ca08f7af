// The console's push channel (`/ws/console`): the login token goes in the first message (never
// in the URL); the server then sends the tenant's events as JSON. Reconnects by itself with a
// growing delay while signed in.

export interface ConsoleEvent {
  kind:
    | "ready"
    | "resync"
    | "machine_online"
    | "machine_offline"
    | "session_started"
    | "consent_pending"
    | "consent_granted"
    | "consent_denied"
    | "session_ended"
    | "code_used"
    | "code_revoked"
    | "usb_attached";
  machine_id?: string;
  session_id?: string;
  code_id?: string;
  reason?: string;
  timeout_secs?: number;
}

type Listener = (event: ConsoleEvent) => void;

export class ConsoleEvents {
  private socket: WebSocket | null = null;
  private listeners: Listener[] = [];
  private delayMs = 500;
  private stopped = true;

  constructor(private readonly token: () => string | null) {}

  on(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** Connects (if signed in and not connected yet). */
  start(): void {
    this.stopped = false;
    if (this.socket || !this.token()) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws/console`);
    this.socket = socket;
    socket.addEventListener("open", () => socket.send(JSON.stringify({ token: this.token() })));
    socket.addEventListener("message", (message) => {
      if (typeof message.data !== "string") return;
      let event: ConsoleEvent;
      try {
        event = JSON.parse(message.data) as ConsoleEvent;
      } catch {
        return;
      }
      if (event.kind === "ready") this.delayMs = 500;
      for (const listener of this.listeners) listener(event);
    });
    socket.addEventListener("close", () => {
      this.socket = null;
      if (this.stopped || !this.token()) return;
      window.setTimeout(() => this.start(), this.delayMs);
      this.delayMs = Math.min(this.delayMs * 2, 15_000);
    });
  }

  stop(): void {
    this.stopped = true;
    this.socket?.close();
    this.socket = null;
  }
}
