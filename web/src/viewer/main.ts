// The in-browser viewer: joins one session with a freshly minted viewer token, draws the remote
// screen, and forwards input only when the server granted control.

import { ApiClient, ApiError, rememberNext } from "../net/api";
import { ViewerSocket, type Envelope } from "../net/viewer-socket";
import { reach } from "../gen/reach.js";
import { applyCopies, drawRawTiles } from "../decode/raw";
import { H264Decoder } from "../decode/h264";
import { FrameAssembler } from "../decode/parts";
import { KeyboardForwarder } from "../input/keyboard";
import { pointerEventOf, wheelEventOf } from "../input/pointer";
import { TYPE_MAX_CHARS, TYPE_RATE_PER_SEC, keyEventsFor } from "../input/typing";
import { StreamStats } from "./stats";
import { RemoteCursor } from "./cursor";
import { machineName, type Machine } from "../console/names";
import { TouchControl } from "./touch";
import { wireKeysField } from "./keys-field";
import { UsbPanel } from "./usb-panel";

const { AccessMode, VideoCodec, SessionEvent } = reach.v1;

interface ViewerToken {
  token: string;
  access?: string;
}

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`viewer: #${id} missing`);
  return element as T;
}

const canvas = byId<HTMLCanvasElement>("screen-canvas");
const ctx2d = canvas.getContext("2d", { alpha: false });
const state = byId<HTMLSpanElement>("state");
const accessBadge = byId<HTMLSpanElement>("access");
const usbBadge = byId<HTMLButtonElement>("usb");
const overlay = byId<HTMLDivElement>("overlay");
const overlayText = byId<HTMLParagraphElement>("overlay-text");
const reconnectButton = byId<HTMLButtonElement>("reconnect");
const statsView = byId<HTMLSpanElement>("stats");
const controls = ["cad", "system-keys", "paste", "type-clipboard", "keys"].map((id) => byId<HTMLInputElement>(id));
const clipboardSync = byId<HTMLInputElement>("clipboard-sync");
const stats = new StreamStats();
const cursor = new RemoteCursor(byId<HTMLCanvasElement>("cursor"), canvas);
window.addEventListener("resize", () => cursor.place());

/** A pixel the latency benchmark waits for: `seenAt` is set (epoch ms) once it is drawn. */
interface PixelWatch {
  x: number;
  y: number;
  rgb: [number, number, number];
  tolerance: number;
  seenAt: number | null;
}

/** Read by the browser tests and benchmarks: what the viewer has seen so far. */
const exposed = {
  state: "connecting",
  access: "",
  /** USB availability from the server's grant: "" until joined, "available" or the reason. */
  usb: "",
  framesDrawn: 0,
  codec: "",
  lastFrameAt: 0,
  sentInputs: 0,
  lastClipboard: "",
  typing: false,
  /** Frames that arrived in more than one part and were reassembled. */
  splitFrames: 0,
  watch: null as PixelWatch | null,
  /** For tests: drop the connection as a network failure would (the session stays live; the
   * server sees an abnormal close, as for a dropped connection, and keeps USB claims). */
  dropConnection(): void {
    socket?.abandon(4000, "connection cut");
    onClose(1006, "");
  },
};
(window as unknown as { reachViewer: typeof exposed }).reachViewer = exposed;

function setState(kind: string, message: string): void {
  exposed.state = kind;
  state.textContent = message;
  state.className = kind === "error" || kind === "ended" ? "error" : "";
  if (kind === "ended") showEnded(message, false);
}

/** Why a session or a connection ended, as a sentence for the technician. */
const END_REASONS: Record<string, string> = {
  consent_refused: "The person at the machine declined the session.",
  consent_timeout: "The person at the machine did not answer in time.",
  agent_disconnected: "The remote machine disconnected.",
  ended_by_user: "The session was ended.",
  idle: "The session ended because nobody was watching.",
  server_restart: "The server restarted.",
};

let reconnectTimer: number | undefined;

/** Greys out the picture, disables the controls and says what happened; a lost connection (not
 * a finished session) is retried by itself after a countdown. */
function showEnded(message: string, retry: boolean): void {
  keyboard.releaseAll();
  canvas.classList.add("dimmed");
  for (const element of controls) element.disabled = true;
  accessBadge.hidden = true;
  overlay.hidden = false;
  reconnectButton.hidden = !retry;
  overlayText.textContent = message;
  window.clearInterval(reconnectTimer);
  if (!retry) return;
  let left = 5;
  const tick = () => {
    overlayText.textContent = `${message} Reconnecting in ${left} s…`;
    if (left-- <= 0) reconnect();
  };
  tick();
  reconnectTimer = window.setInterval(tick, 1000);
}

function reconnect(): void {
  window.clearInterval(reconnectTimer);
  overlay.hidden = true;
  canvas.classList.remove("dimmed");
  accessBadge.hidden = false;
  setState("connecting", "Reconnecting…");
  void join();
}

let socket: ViewerSocket | null = null;
let control = false;
let screenIndex = 0;
const screenSelect = byId<HTMLSelectElement>("screen");

interface ScreenInfo {
  index: number;
  name?: string;
  width: number;
  height: number;
  primary?: boolean;
}

/** Fills the screen selector from the machine's advertised screens. */
async function loadScreens(api: ApiClient, sessionId: string): Promise<void> {
  try {
    const session = await api.get<{ machine_id: string }>(`/api/sessions/${encodeURIComponent(sessionId)}`);
    const machine = await api.get<Omit<Machine, "capabilities"> & { capabilities?: { screens?: ScreenInfo[] } }>(
      `/api/machines/${encodeURIComponent(session.machine_id)}`,
    );
    if (machine.name) {
      document.title = `${machineName(machine)} — Reach`;
      byId("viewer-heading").textContent = `Remote screen of ${machineName(machine)}`;
    }
    const screens = machine.capabilities?.screens ?? [];
    screenSelect.replaceChildren(
      ...screens.map((s) => {
        const option = document.createElement("option");
        option.value = String(s.index);
        option.textContent = `${s.name || `Screen ${s.index + 1}`} (${s.width}×${s.height})`;
        return option;
      }),
    );
  } catch {
    // Not allowed to read the machine (viewer role) or no screens: keep the default screen.
  }
}
const keyboard = new KeyboardForwarder((key) => sendInput({ key }));
const h264 = new H264Decoder(
  (frame) => {
    if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
      canvas.width = frame.displayWidth;
      canvas.height = frame.displayHeight;
    }
    ctx2d?.drawImage(frame, 0, 0);
    frameDrawn();
    if (!h264.busy) drawDeferredRaw();
  },
  (message) => setState("error", message),
);

function sendInput(body: reach.v1.IEnvelope): void {
  if (!control || !socket) return;
  exposed.sentInputs += 1;
  socket.send(body);
}

function checkWatch(): void {
  const watch = exposed.watch;
  if (!watch || watch.seenAt !== null || !ctx2d) return;
  const data = ctx2d.getImageData(watch.x, watch.y, 1, 1).data;
  const close = watch.rgb.every((value, i) => Math.abs(value - (data[i] ?? 0)) <= watch.tolerance);
  if (close) watch.seenAt = performance.timeOrigin + performance.now();
}

function frameDrawn(): void {
  checkWatch();
  cursor.place();
  exposed.framesDrawn += 1;
  exposed.lastFrameAt = performance.now();
  stats.framesDrawn += 1;
}

const assembler = new FrameAssembler();

/** Gathers the parts of split frames; a frame is drawn once all its parts are in. */
function onVideoPart(part: reach.v1.IVideoFrame): void {
  const assembled = assembler.push(part);
  if (assembled.kind === "complete") {
    if ((part.part ?? 0) > 0) exposed.splitFrames += 1;
    return onVideoFrame(assembled.frame);
  }
  if (assembled.kind === "lost") socket?.send({ keyframeRequest: {} });
}

/** Whether this stream is H.264 (which sends its small changes as raw tiles). */
let h264Stream = false;

function onVideoFrame(frame: reach.v1.IVideoFrame): void {
  if (frame.codec === VideoCodec.VIDEO_CODEC_H264) h264Stream = true;
  stats.codec = h264Stream ? "h264" : "raw";
  exposed.codec = stats.codec;
  if (frame.codec === VideoCodec.VIDEO_CODEC_H264) {
    const bits = frame.bitstream ?? new Uint8Array();
    stats.onFrame(bits.length, Number(frame.ptsMicros ?? 0));
    if (!h264.decode(bits, !!frame.keyframe, Number(frame.ptsMicros ?? 0))) {
      socket?.send({ keyframeRequest: {} });
    }
    return;
  }
  const tiles = frame.tiles ?? [];
  stats.onFrame(tiles.reduce((sum, t) => sum + (t.zstdBgra?.length ?? 0), 0), Number(frame.ptsMicros ?? 0));
  // In an H.264 stream small changes come as raw tiles: keep them above older pictures.
  if (h264.busy && deferredRaw.length < MAX_DEFERRED_RAW) {
    deferredRaw.push(frame);
    return;
  }
  drawDeferredRaw();
  drawRaw(frame);
}

/** Raw frames waiting for an earlier H.264 picture to be drawn first, at most. */
const MAX_DEFERRED_RAW = 64;
const deferredRaw: reach.v1.IVideoFrame[] = [];

function drawDeferredRaw(): void {
  for (const frame of deferredRaw.splice(0)) drawRaw(frame);
}

function drawRaw(frame: reach.v1.IVideoFrame): void {
  const width = frame.width ?? 0;
  const height = frame.height ?? 0;
  if (width && height && (canvas.width !== width || canvas.height !== height)) {
    canvas.width = width;
    canvas.height = height;
  }
  if (!ctx2d) return;
  const moved = applyCopies(ctx2d, frame.copies ?? []);
  if (drawRawTiles(ctx2d, frame.tiles ?? []) + moved > 0) frameDrawn();
}

function onSessionEvent(event: reach.v1.ISessionEvent): void {
  const reason = event.reason ? ` (${event.reason})` : "";
  switch (event.kind) {
    case SessionEvent.Kind.KIND_CONSENT_PENDING:
      return setState("pending", "Waiting for the user to accept…");
    case SessionEvent.Kind.KIND_CONSENT_GRANTED:
    case SessionEvent.Kind.KIND_STARTED:
      requestStream();
      return setState("live", "Connected");
    case SessionEvent.Kind.KIND_CONSENT_DENIED:
      return setState("ended", END_REASONS[event.reason ?? ""] ?? "The person at the machine declined the session.");
    case SessionEvent.Kind.KIND_AGENT_OFFLINE:
      return setState("offline", "The remote machine went offline. Waiting for it to come back…");
    case SessionEvent.Kind.KIND_ENDED:
      return setState("ended", END_REASONS[event.reason ?? ""] ?? `The session ended${reason}.`);
    default:
      return;
  }
}

function onEnvelope(envelope: Envelope): void {
  if (envelope.authOk) return onAuthOk(envelope.authOk);
  if (envelope.videoFrame) return onVideoPart(envelope.videoFrame);
  if (envelope.sessionEvent) return onSessionEvent(envelope.sessionEvent);
  if (envelope.usb?.frame) return usbPanel.receive(envelope.usb.frame);
  if (envelope.cursorShape) return cursor.setShape(envelope.cursorShape);
  if (envelope.cursorPosition) return cursor.setPosition(envelope.cursorPosition);
  if (envelope.clipboard?.text) {
    exposed.lastClipboard = envelope.clipboard.text;
    // Only when the technician asked for it: the remote must not overwrite their clipboard.
    if (clipboardSync.checked) void navigator.clipboard?.writeText(envelope.clipboard.text).catch(() => undefined);
    return;
  }
  if (envelope.error) onError(envelope.error);
}

function onError(error: reach.v1.IError): void {
  switch (error.code) {
    case "consent_pending":
      return setState("pending", "Waiting for the user to accept…");
    case "codec_fallback":
      h264Stream = false;
      stats.codec = "raw (fallback)";
      return;
    default:
      setState("error", error.message || error.code || "Error");
  }
}

/** Codec preference from `viewer.html?codec=raw|h264`; the server makes the final choice. */
function preferredCodec(): reach.v1.VideoCodec {
  const asked = new URLSearchParams(location.search).get("codec");
  if (asked === "raw") return VideoCodec.VIDEO_CODEC_RAW;
  if (asked === "h264") return VideoCodec.VIDEO_CODEC_H264;
  return typeof VideoDecoder === "undefined" ? VideoCodec.VIDEO_CODEC_RAW : VideoCodec.VIDEO_CODEC_UNSPECIFIED;
}

/** Asks for the stream (the relay lets it through only once consent allows). */
function requestStream(): void {
  socket?.send({ startStream: { codec: preferredCodec(), screen: screenIndex, maxFps: 30 } });
}

function onAuthOk(ok: reach.v1.IAuthOk): void {
  control = ok.access === AccessMode.ACCESS_MODE_CONTROL;
  exposed.access = control ? "control" : "view_only";
  accessBadge.textContent = control ? "Control" : "View only";
  accessBadge.className = control ? "badge" : "badge view-only";
  for (const element of controls) element.disabled = !control;
  showUsb(ok.usb === true, ok.usbUnavailable ?? "");
  canvas.focus();
  if (exposed.state === "connecting") setState("joined", "Joined; waiting for the session to start…");
}

/** Says whether this session may use the remote machine's USB devices, and why not. */
function showUsb(available: boolean, why: string): void {
  exposed.usb = available ? "available" : why || "unavailable";
  usbBadge.hidden = false;
  usbBadge.textContent = available ? "USB available" : "No USB";
  usbBadge.title = available ? "USB devices of the remote machine may be used in this session" : why;
  usbBadge.className = available ? "badge usb-on" : "badge usb-off";
  usbPanel.update(available, why);
}

const usbPanel = new UsbPanel(
  usbBadge,
  byId("usb-panel"),
  new ApiClient(),
  () => decodeURIComponent(location.hash.replace(/^#/, "")),
  (frame) => socket?.send({ usb: { frame } }),
);

function onClose(code: number, reason: string): void {
  keyboard.releaseAll();
  h264.close();
  // The connection, not the session, was lost: try again by ourselves (USB claims wait).
  const lost = exposed.state !== "ended" && ([1001, 1006, 1011, 1012, 1013, 1014].includes(code) || (code === 4401 && /expired/.test(reason)));
  usbPanel.disconnected(lost);
  if (exposed.state === "ended") return;
  // Close codes: crates/reach-proto/src/close.rs.
  const messages: Record<number, string> = {
    1000: "The session ended.",
    1001: "The server is restarting. Reload to join again.",
    1008: `The server refused this viewer: ${reason || "policy violation"}.`,
    4400: "This page's origin is not allowed to join sessions.",
    4401: `Your viewer token was refused (${reason || "expired"}). Reload to join again.`,
    4403: "You may not join this session.",
    4404: "The session has ended.",
    4408: "Joining took too long. Reload to try again.",
    4410: "Your access was revoked.",
    4430: "The user declined the session.",
  };
  if (lost) {
    exposed.state = "lost";
    state.textContent = "Connection lost";
    return showEnded(code === 1001 ? "The server is restarting." : "The connection to the server was lost.", true);
  }
  setState("ended", messages[code] ?? "The connection to the session was closed.");
}

/** Types the clipboard as key presses, paced under the relay's input limit. */
async function typeClipboard(): Promise<void> {
  const text = (await navigator.clipboard.readText().catch(() => "")).slice(0, TYPE_MAX_CHARS);
  if (!text) return;
  const keys = keyEventsFor(text);
  if ("untypable" in keys) {
    state.textContent = `Cannot type "${keys.untypable}" as a key press; use Paste clipboard instead.`;
    return;
  }
  exposed.typing = true;
  for (const group of keys.events) {
    for (const key of group) sendInput({ key });
    await new Promise((ok) => setTimeout(ok, 1000 / TYPE_RATE_PER_SEC));
  }
  exposed.typing = false;
}

function wireInput(): void {
  canvas.addEventListener("keydown", (event) => control && keyboard.handle(event, true));
  canvas.addEventListener("keyup", (event) => control && keyboard.handle(event, false));
  canvas.addEventListener("blur", () => keyboard.releaseAll());
  window.addEventListener("pagehide", () => keyboard.releaseAll());
  // A click on the picture while focus is elsewhere only focuses it: it never lands on the
  // remote (the technician was typing somewhere else, or clicked to come back).
  let swallowUp = false;
  for (const type of ["pointermove", "pointerdown", "pointerup"] as const) {
    canvas.addEventListener(type, (event) => {
      if (event.pointerType === "touch") return; // TouchControl (wireTouch) handles fingers
      if (type === "pointerdown" && document.activeElement !== canvas) {
        canvas.focus();
        swallowUp = true;
        return;
      }
      if (type === "pointerup" && swallowUp) {
        swallowUp = false;
        return;
      }
      sendInput({ pointer: pointerEventOf(canvas, event, screenIndex) });
    });
  }
  canvas.addEventListener("contextmenu", (event) => event.preventDefault());
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    sendInput({ wheel: wheelEventOf(event) });
  }, { passive: false });
  // Toolbar actions hand the keyboard straight back to the remote screen, so typing goes on
  // where it was and Space/Enter never fire the button again.
  const toolbar = (id: string, event: string, action: () => unknown): void =>
    byId(id).addEventListener(event, async () => {
      await action();
      canvas.focus();
    });
  toolbar("cad", "click", () => sendInput({ specialKey: { key: reach.v1.SpecialKeyEvent.Key.KEY_CTRL_ALT_DEL } }));
  toolbar("keyframe", "click", () => socket?.send({ keyframeRequest: {} }));
  toolbar("screen", "change", () => {
    screenIndex = Number(screenSelect.value) || 0;
    requestStream();
  });
  toolbar("paste", "click", async () => {
    const text = await navigator.clipboard.readText().catch(() => "");
    if (text) sendInput({ clipboard: { text } });
  });
  const systemKeys = byId<HTMLInputElement>("system-keys");
  systemKeys.addEventListener("change", async () => {
    keyboard.sendSystemKeys = systemKeys.checked;
    const lockable = navigator as Navigator & { keyboard?: { lock(): Promise<void>; unlock(): void } };
    if (systemKeys.checked) {
      await document.documentElement.requestFullscreen().catch(() => undefined);
      await lockable.keyboard?.lock().catch(() => undefined);
    } else {
      lockable.keyboard?.unlock();
    }
    canvas.focus();
  });
  reconnectButton.addEventListener("click", reconnect);
  toolbar("type-clipboard", "click", typeClipboard);
  toolbar("fullscreen", "click", () => document.documentElement.requestFullscreen().catch(() => undefined));
  document.addEventListener("fullscreenchange", () => {
    if (!document.fullscreenElement) keyboard.releaseAll();
  });
}

/** Phones and tablets: tap to click, pinch and pan to zoom, a field whose keyboard types remotely. */
function wireTouch(): void {
  const at = (clientX: number, clientY: number, buttons: number) =>
    pointerEventOf(canvas, { clientX, clientY, buttons } as MouseEvent, screenIndex);
  const touch = new TouchControl(canvas, (x, y, buttons) => {
    for (const b of [0, buttons, 0]) sendInput({ pointer: at(x, y, b) });
  }, () => cursor.place());
  byId("zoom-in").addEventListener("click", () => touch.zoomBy(1.5));
  byId("zoom-out").addEventListener("click", () => touch.zoomBy(1 / 1.5));
  byId("fit").addEventListener("click", () => touch.reset());
  const keysField = byId<HTMLInputElement>("keys");
  wireKeysField(keysField, (key) => sendInput({ key }), (ch) => (state.textContent = `Cannot type "${ch}" as a key press.`));
  const more = byId<HTMLButtonElement>("more");
  more.addEventListener("click", () => {
    const open = more.getAttribute("aria-expanded") !== "true";
    more.setAttribute("aria-expanded", String(open));
    byId("secondary").classList.toggle("open", open);
  });
  window.addEventListener("resize", () => touch.apply());
}

async function join(): Promise<void> {
  const sessionId = decodeURIComponent(location.hash.replace(/^#/, ""));
  const api = new ApiClient();
  if (!sessionId) return setState("error", "No session given. Open a session from the console.");
  if (!api.token) {
    // Sign in, then come straight back to this session (the path is kept in this tab only).
    rememberNext(location.pathname + location.search + location.hash);
    setState("error", "You are not signed in. Taking you to the sign-in page…");
    return location.assign("/#/login");
  }
  let minted: ViewerToken;
  try {
    minted = await api.post<ViewerToken>(`/api/sessions/${encodeURIComponent(sessionId)}/viewer-token`);
  } catch (error) {
    return setState("error", error instanceof ApiError ? error.message : String(error));
  }
  socket?.abandon();
  socket = new ViewerSocket(minted.token, { onEnvelope, onClose });
  void loadScreens(api, sessionId);
}

// "idle" from the start: nothing has arrived before the first frame (never "0 fps").
const showStats = (): void => void (statsView.textContent = stats.describe());
showStats();
setInterval(showStats, 1000);
wireInput();
wireTouch();
void join();
