// The in-browser viewer: joins one session with a freshly minted viewer token, draws the remote
// screen, and forwards input only when the server granted control.

import { ApiClient, ApiError } from "../net/api";
import { ViewerSocket, type Envelope } from "../net/viewer-socket";
import { reach } from "../gen/reach.js";
import { applyCopies, drawRawTiles } from "../decode/raw";
import { H264Decoder } from "../decode/h264";
import { KeyboardForwarder } from "../input/keyboard";
import { pointerEventOf, wheelEventOf } from "../input/pointer";
import { StreamStats } from "./stats";
import { RemoteCursor } from "./cursor";

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
const usbBadge = byId<HTMLSpanElement>("usb");
const statsView = byId<HTMLSpanElement>("stats");
const controls = ["cad", "system-keys", "paste"].map((id) => byId<HTMLInputElement>(id));
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
  watch: null as PixelWatch | null,
};
(window as unknown as { reachViewer: typeof exposed }).reachViewer = exposed;

function setState(kind: string, message: string): void {
  exposed.state = kind;
  state.textContent = message;
  state.className = kind === "error" || kind === "ended" ? "error" : "";
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
    const machine = await api.get<{ name?: string; capabilities?: { screens?: ScreenInfo[] } }>(
      `/api/machines/${encodeURIComponent(session.machine_id)}`,
    );
    if (machine.name) document.title = `${machine.name} — Reach`;
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

function onVideoFrame(frame: reach.v1.IVideoFrame): void {
  const width = frame.width ?? 0;
  const height = frame.height ?? 0;
  stats.codec = frame.codec === VideoCodec.VIDEO_CODEC_H264 ? "h264" : "raw";
  exposed.codec = stats.codec;
  if (frame.codec === VideoCodec.VIDEO_CODEC_H264) {
    const bits = frame.bitstream ?? new Uint8Array();
    stats.onFrame(bits.length, Number(frame.ptsMicros ?? 0));
    if (!h264.decode(bits, !!frame.keyframe, Number(frame.ptsMicros ?? 0))) {
      socket?.send({ keyframeRequest: {} });
    }
    return;
  }
  if (width && height && (canvas.width !== width || canvas.height !== height)) {
    canvas.width = width;
    canvas.height = height;
  }
  const tiles = frame.tiles ?? [];
  stats.onFrame(tiles.reduce((sum, t) => sum + (t.zstdBgra?.length ?? 0), 0), Number(frame.ptsMicros ?? 0));
  if (!ctx2d) return;
  const moved = applyCopies(ctx2d, frame.copies ?? []);
  if (drawRawTiles(ctx2d, tiles) + moved > 0) frameDrawn();
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
      return setState("ended", `The user declined the session${reason}.`);
    case SessionEvent.Kind.KIND_AGENT_OFFLINE:
      return setState("offline", "The remote machine went offline. Waiting for it to come back…");
    case SessionEvent.Kind.KIND_ENDED:
      return setState("ended", `The session ended${reason}.`);
    default:
      return;
  }
}

function onEnvelope(envelope: Envelope): void {
  if (envelope.authOk) return onAuthOk(envelope.authOk);
  if (envelope.videoFrame) return onVideoFrame(envelope.videoFrame);
  if (envelope.sessionEvent) return onSessionEvent(envelope.sessionEvent);
  if (envelope.cursorShape) return cursor.setShape(envelope.cursorShape);
  if (envelope.cursorPosition) return cursor.setPosition(envelope.cursorPosition);
  if (envelope.clipboard?.text) {
    exposed.lastClipboard = envelope.clipboard.text;
    void navigator.clipboard?.writeText(envelope.clipboard.text).catch(() => undefined);
    return;
  }
  if (envelope.error) onError(envelope.error);
}

function onError(error: reach.v1.IError): void {
  switch (error.code) {
    case "consent_pending":
      return setState("pending", "Waiting for the user to accept…");
    case "codec_fallback":
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
}

function onClose(code: number, reason: string): void {
  keyboard.releaseAll();
  h264.close();
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
  setState("ended", messages[code] ?? `Disconnected (${code}${reason ? `: ${reason}` : ""}).`);
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
  toolbar("fullscreen", "click", () => document.documentElement.requestFullscreen().catch(() => undefined));
  document.addEventListener("fullscreenchange", () => {
    if (!document.fullscreenElement) keyboard.releaseAll();
  });
}

async function join(): Promise<void> {
  const sessionId = decodeURIComponent(location.hash.replace(/^#/, ""));
  const api = new ApiClient();
  if (!sessionId) return setState("error", "No session given. Open a session from the console.");
  if (!api.token) return setState("error", "You are not signed in. Sign in to the console first.");
  let minted: ViewerToken;
  try {
    minted = await api.post<ViewerToken>(`/api/sessions/${encodeURIComponent(sessionId)}/viewer-token`);
  } catch (error) {
    return setState("error", error instanceof ApiError ? error.message : String(error));
  }
  socket = new ViewerSocket(minted.token, { onEnvelope, onClose });
  void loadScreens(api, sessionId);
}

setInterval(() => (statsView.textContent = stats.describe()), 1000);
wireInput();
void join();
