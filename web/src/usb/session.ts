// The client side of the Reach USB protocol over any ordered message transport (the viewer's
// WebSocket): HELLO, LIST, OPEN/CLOSE, control and bulk transfers with byte credits, RESUME of
// open claims over a new transport after a drop, and live statistics per claim. Frames go out
// through `send` (replaced by `resume`); frames in come through `receive`.

import {
  CodecError,
  Op,
  Reassembler,
  decodeCredit,
  decodeFrame,
  decodeReply,
  encodeControl,
  encodeCredit,
  encodeEndpoint,
  jsonBody,
  parseJson,
  toFrames,
  type Device,
  type DeviceFilter,
  type Hello,
  type Opened,
  type PeerError,
  type Setup,
  type TransferReply,
} from "./codec";

/** This client's receive window (the spec's minimum is 1 MiB). */
export const WINDOW = 4 * 1024 * 1024;
/** Until the host's HELLO says otherwise, assume the smallest window a host may announce. */
const MIN_WINDOW = 1024 * 1024;
const TRANSFER_TIMEOUT_MS = 10_000;
/** An OPEN may wait for the person at the machine to answer a prompt. */
const OPEN_TIMEOUT_MS = 180_000;
const MAX_IN_FLIGHT = 1024;
const RTT_SAMPLES = 512;

export class UsbError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ClaimStats {
  /** Round trips of control requests, ms, most recent last. */
  controlRtts: number[];
  bytesOut: number;
  bytesIn: number;
  inFlight: number;
  transfers: number;
  errors: number;
  /** Times the claim came back over a new connection (RESUME answered `resumed: true`). */
  resumes: number;
  /** Bytes sent toward the host not yet granted back by its CREDIT. */
  creditOut: number;
  /** Bytes received from the host not yet granted back to it. */
  creditIn: number;
}

interface Pending {
  claim: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
  sentAt: number;
  kind: "list" | "open" | "control" | "bulk";
  /** A transfer's frames, kept until its reply: sent again under the same id when the host
   * says after a RESUME that it never received them. */
  frames?: Uint8Array[];
}

interface Claim {
  credit: number;
  queue: Uint8Array[];
  released: number;
  stats: ClaimStats;
  closing: Array<(reason: string) => void>;
  /** The single-use token for the next RESUME (rotated by every OPENED). */
  token: string;
  /** False from a transport drop until the host answered this claim's RESUME. */
  bound: boolean;
  /** Request ids listed in the last RESUME. */
  listed: Set<number>;
}

export interface Resumed {
  claim: number;
  ok: boolean;
  /** Why not, when `ok` is false. */
  reason?: string;
}

export interface SessionHandlers {
  /** A claim closed for any reason (requested, unplugged, shutdown…). */
  onClosed?(claim: number, reason: string): void;
  /** A device was added or removed on the host. */
  onDeviceEvent?(event: string, device: Device): void;
  /** An ERROR tied to no pending request. */
  onPeerError?(claim: number, error: PeerError): void;
  /** A claim's RESUME was answered: back (`ok`), or rejected (the claim is then closed). */
  onResumed?(result: Resumed): void;
}

/** Percentile `p` (0…1) of `samples`, or null without samples. */
export function percentile(samples: readonly number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? null;
}

export class UsbSession {
  private readonly pending = new Map<number, Pending>();
  private readonly claims = new Map<number, Claim>();
  private nextId = 1;
  private peerWindow = MIN_WINDOW;
  private peerHello: Hello | null = null;
  private dead: Error | null = null;
  /** Between a transport drop and the next transport: nothing is sent. */
  private detached = false;
  private reassembler = new Reassembler();

  constructor(
    private send: (frame: Uint8Array) => void,
    private readonly handlers: SessionHandlers = {},
    private readonly now: () => number = () => performance.now(),
  ) {
    this.sendHello();
  }

  private sendHello(): void {
    const hello: Hello = { versions: [2], capabilities: ["multi_in_flight", "resume"], window: WINDOW };
    for (const frame of toFrames(Op.Hello, 0, 0, jsonBody(hello))) this.send(frame);
  }

  /** Claims open now. */
  get claimIds(): number[] {
    return [...this.claims.keys()];
  }

  /** The host's HELLO once it arrived. */
  get hello(): Hello | null {
    return this.peerHello;
  }

  list(): Promise<Device[]> {
    return this.request<{ devices: Device[] }>(0, "list", Op.List, jsonBody({}), TRANSFER_TIMEOUT_MS).then((r) => r.devices ?? []);
  }

  /** Opens a device; stays pending while the host asks its user (prompt_on_open). */
  open(filter: DeviceFilter): Promise<Opened> {
    return this.request<Opened>(0, "open", Op.Open, jsonBody({ filter }), OPEN_TIMEOUT_MS).then((opened) => {
      this.claims.set(opened.claim_id, {
        credit: this.peerWindow,
        queue: [],
        released: 0,
        stats: { controlRtts: [], bytesOut: 0, bytesIn: 0, inFlight: 0, transfers: 0, errors: 0, resumes: 0, creditOut: 0, creditIn: 0 },
        closing: [],
        token: opened.resume_token ?? "",
        bound: true,
        listed: new Set(),
      });
      return opened;
    });
  }

  /** The transport dropped without the session ending: LIST and OPEN requests fail, claims
   * and their transfers wait for `resume` (the host keeps them for its retention time). */
  detach(why: string): void {
    if (this.dead) return;
    this.detached = true;
    this.reassembler = new Reassembler();
    for (const [id, p] of this.pending) {
      if (p.kind !== "list" && p.kind !== "open") continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new UsbError("closed", why));
    }
    for (const state of this.claims.values()) {
      state.bound = false;
      state.queue = [];
      state.credit = 0;
      state.released = 0;
    }
  }

  /** A new transport: HELLO, then one RESUME per claim with the request ids still pending
   * (docs/usb-protocol.md, Resume). Results come through `onResumed`. */
  resume(send: (frame: Uint8Array) => void): void {
    this.send = send;
    this.detached = false;
    this.sendHello();
    for (const [claim, state] of this.claims) {
      const pending = [...this.pending].filter(([, p]) => p.claim === claim && p.frames).map(([id]) => id).sort((a, b) => a - b);
      state.listed = new Set(pending);
      for (const frame of toFrames(Op.Resume, claim, 0, jsonBody({ token: state.token, pending }))) this.send(frame);
    }
  }

  /** Sends CLOSE; resolves with the CLOSED reason. */
  close(claim: number): Promise<string> {
    const state = this.claims.get(claim);
    if (!state) return Promise.resolve("requested");
    return new Promise((resolve) => {
      state.closing.push(resolve);
      for (const frame of toFrames(Op.Close, claim, 0, new Uint8Array())) this.send(frame);
    });
  }

  /** A control transfer: IN when bit 7 of requestType is set (`length` bytes wanted), else OUT `data`. */
  control(claim: number, setup: Setup, length: number, data: Uint8Array = new Uint8Array(), timeoutMs = 0): Promise<TransferReply> {
    return this.transfer(claim, "control", Op.Control, encodeControl(setup, length, data, timeoutMs), data.length);
  }

  /** A bulk transfer: IN when bit 7 of `endpoint` is set (`length` bytes wanted), else OUT `data`. */
  bulk(claim: number, endpoint: number, length: number, data: Uint8Array = new Uint8Array(), timeoutMs = 0, clientTimeoutMs = TRANSFER_TIMEOUT_MS): Promise<TransferReply> {
    return this.transfer(claim, "bulk", Op.Bulk, encodeEndpoint(endpoint, length, data, timeoutMs), data.length, clientTimeoutMs);
  }

  stats(claim: number): ClaimStats | null {
    const state = this.claims.get(claim);
    if (!state) return null;
    state.stats.creditOut = state.bound ? Math.max(0, this.peerWindow - state.credit) : 0;
    state.stats.creditIn = state.released;
    return state.stats;
  }

  /** The transport is gone: every pending request fails, claims are forgotten. */
  shutdown(why: string): void {
    this.dead = new UsbError("closed", why);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(this.dead);
    }
    for (const [claim, state] of this.claims) {
      for (const done of state.closing) done("shutdown");
      this.handlers.onClosed?.(claim, "shutdown");
    }
    this.claims.clear();
  }

  /** One frame from the host. A frame that cannot be read is dropped. */
  receive(bytes: Uint8Array): void {
    let message;
    try {
      message = this.reassembler.push(decodeFrame(bytes));
    } catch (error) {
      if (error instanceof CodecError) return;
      throw error;
    }
    if (message) this.dispatch(message.op, message.claim, message.requestId, message.body);
  }

  private dispatch(op: number, claim: number, requestId: number, body: Uint8Array): void {
    try {
      switch (op) {
        case Op.Hello:
          return this.onHello(parseJson<Hello>(body));
        case Op.List:
          return this.settle(requestId, parseJson(body));
        case Op.Opened:
          return this.onOpened(requestId, parseJson<Opened & { unknown?: number[]; lost?: number[] }>(body));
        case Op.Control:
        case Op.Bulk:
        case Op.Interrupt:
          return this.onReply(claim, requestId, body);
        case Op.Credit:
          return this.onCredit(claim, decodeCredit(body));
        case Op.Closed:
          return this.onClosedFrame(claim, parseJson<{ reason?: string }>(body).reason ?? "unknown");
        case Op.DeviceEvent: {
          const event = parseJson<{ event: string; device: Device }>(body);
          return this.handlers.onDeviceEvent?.(event.event, event.device);
        }
        case Op.Error:
          return this.onError(claim, requestId, parseJson<PeerError>(body));
        default:
          return;
      }
    } catch (error) {
      if (!(error instanceof CodecError)) throw error;
    }
  }

  private onHello(hello: Hello): void {
    this.peerHello = hello;
    const grown = Math.max(MIN_WINDOW, hello.window) - this.peerWindow;
    this.peerWindow = Math.max(MIN_WINDOW, hello.window);
    for (const state of this.claims.values()) if (state.bound) state.credit += grown;
    this.flush();
  }

  private onOpened(requestId: number, opened: Opened & { unknown?: number[]; lost?: number[] }): void {
    if (!opened.resumed) return this.settle(requestId, opened);
    const state = this.claims.get(opened.claim_id);
    if (!state) return;
    state.token = opened.resume_token ?? "";
    state.bound = true;
    state.credit = this.peerWindow;
    state.stats.resumes += 1;
    const unknown = new Set(opened.unknown ?? []);
    const resend = [...this.pending]
      .filter(([id, p]) => p.claim === opened.claim_id && p.frames && (unknown.has(id) || !state.listed.has(id)))
      .sort(([a], [b]) => a - b);
    for (const [, p] of resend) state.queue.push(...(p.frames ?? []));
    for (const id of opened.lost ?? []) {
      const p = this.pending.get(id);
      if (!p || p.claim !== opened.claim_id) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      this.finishTransfer(p.claim, p.kind, false);
      p.reject(new UsbError("lost", "the reply was lost while the connection was down (the request ran once)"));
    }
    // A CLOSE asked for around the drop may never have reached the host: ask again.
    if (state.closing.length > 0) for (const frame of toFrames(Op.Close, opened.claim_id, 0, new Uint8Array())) this.send(frame);
    this.handlers.onResumed?.({ claim: opened.claim_id, ok: true });
    this.flush();
  }

  private request<T>(claim: number, kind: Pending["kind"], op: number, body: Uint8Array, timeoutMs: number): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.detached) return Promise.reject(new UsbError("closed", "the connection is down; it is being restored"));
    const id = this.nextId++;
    const promise = this.track<T>(id, claim, kind, timeoutMs);
    for (const frame of toFrames(op, claim, id, body)) this.send(frame);
    return promise;
  }

  private track<T>(id: number, claim: number, kind: Pending["kind"], timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        this.finishTransfer(claim, kind, false);
        reject(new UsbError("timeout", `no answer from the host in ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.pending.set(id, { claim, kind, resolve: resolve as (v: unknown) => void, reject, timer, sentAt: this.now() });
    });
  }

  private transfer(claim: number, kind: "control" | "bulk", op: number, body: Uint8Array, outBytes: number, timeoutMs = TRANSFER_TIMEOUT_MS): Promise<TransferReply> {
    if (this.dead) return Promise.reject(this.dead);
    const state = this.claims.get(claim);
    if (!state) return Promise.reject(new UsbError("unknown_claim", "the claim is not open"));
    if (state.stats.inFlight >= MAX_IN_FLIGHT) return Promise.reject(new UsbError("too_many_in_flight", "1024 requests are already pending"));
    const id = this.nextId++;
    state.stats.inFlight += 1;
    state.stats.bytesOut += outBytes;
    const promise = this.track<TransferReply>(id, claim, kind, timeoutMs);
    const frames = toFrames(op, claim, id, body);
    const p = this.pending.get(id);
    if (p) p.frames = frames;
    // A detached claim sends nothing: the RESUME's answer asks for what the host never got.
    if (state.bound) state.queue.push(...frames);
    this.flush();
    return promise;
  }

  /** Sends queued frames while credit lasts, one frame per claim in turn. */
  private flush(): void {
    let progress = true;
    while (progress) {
      progress = false;
      for (const state of this.claims.values()) {
        const frame = state.queue[0];
        if (this.detached || !state.bound || !frame || frame.length - 8 > state.credit) continue;
        state.queue.shift();
        state.credit -= frame.length - 8;
        this.send(frame);
        progress = true;
      }
    }
  }

  private onCredit(claim: number, bytes: number): void {
    const state = this.claims.get(claim);
    if (!state) return;
    state.credit += bytes;
    this.flush();
  }

  private onReply(claim: number, requestId: number, body: Uint8Array): void {
    const state = this.claims.get(claim);
    if (state) {
      // The chunk bytes are processed once delivered: grant them back in eighths of the window.
      state.released += body.length;
      if (state.released >= WINDOW / 8 && state.bound && !this.detached) {
        for (const frame of toFrames(Op.Credit, claim, 0, encodeCredit(state.released))) this.send(frame);
        state.released = 0;
      }
    }
    const p = this.pending.get(requestId);
    if (!p || p.claim !== claim) return;
    const reply = decodeReply(body);
    if (state) {
      state.stats.bytesIn += reply.data.length;
      if (p.kind === "control") {
        state.stats.controlRtts.push(this.now() - p.sentAt);
        if (state.stats.controlRtts.length > RTT_SAMPLES) state.stats.controlRtts.shift();
      }
    }
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    this.finishTransfer(claim, p.kind, reply.status === "ok");
    p.resolve(reply);
  }

  private finishTransfer(claim: number, kind: Pending["kind"], ok: boolean): void {
    if (kind !== "control" && kind !== "bulk") return;
    const stats = this.claims.get(claim)?.stats;
    if (!stats) return;
    stats.inFlight = Math.max(0, stats.inFlight - 1);
    stats.transfers += 1;
    if (!ok) stats.errors += 1;
  }

  private settle(requestId: number, value: unknown): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    p.resolve(value);
  }

  private onError(claim: number, requestId: number, error: PeerError): void {
    const p = requestId === 0 ? undefined : this.pending.get(requestId);
    if (!p) {
      const state = this.claims.get(claim);
      if (state) state.stats.errors += 1;
      if (error.code === "resume_rejected" && state && !state.bound) {
        this.handlers.onResumed?.({ claim, ok: false, reason: error.message ?? error.code });
        return this.onClosedFrame(claim, "resume_rejected");
      }
      this.handlers.onPeerError?.(claim, error);
      return;
    }
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    this.finishTransfer(p.claim, p.kind, false);
    p.reject(new UsbError(error.code, error.message ?? error.code));
  }

  private onClosedFrame(claim: number, reason: string): void {
    const state = this.claims.get(claim);
    this.claims.delete(claim);
    for (const [id, p] of this.pending) {
      if (p.claim !== claim || claim === 0) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new UsbError("closed", `the claim closed (${reason})`));
    }
    for (const done of state?.closing ?? []) done(reason);
    if (state) this.handlers.onClosed?.(claim, reason);
  }
}
