// Touch on the remote picture (phones and tablets): a tap is a left click where the finger
// was, a long press a right click; two fingers pinch to zoom and move the zoomed picture; one
// finger moves it once zoomed. The picture is zoomed with a CSS transform, so the pointer
// mapping (getBoundingClientRect, letterbox-aware) keeps landing on the right remote pixel.

/** Longest touch that still counts as a tap (ms), and how far it may wander (CSS px). */
const TAP_MS = 350;
const TAP_SLOP = 12;
/** A still touch held this long is a right click. */
const LONG_PRESS_MS = 650;
const MAX_ZOOM = 6;

interface Finger {
  x: number;
  y: number;
  startX: number;
  startY: number;
  startedAt: number;
}

/** Sends a click at a page point: `buttons` is DOM-style (1 left, 2 right). */
export type ClickAt = (clientX: number, clientY: number, buttons: number) => void;

export class TouchControl {
  private scale = 1;
  private tx = 0;
  private ty = 0;
  private readonly fingers = new Map<number, Finger>();
  private pinch: { dist: number; midX: number; midY: number; scale: number; tx: number; ty: number } | null = null;
  /** A second finger came down during this gesture: no tap when it ends. */
  private multi = false;
  private longPress: number | undefined;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly click: ClickAt,
    private readonly onChange: () => void,
  ) {
    canvas.style.transformOrigin = "0 0";
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e, false));
    canvas.addEventListener("pointercancel", (e) => this.up(e, true));
  }

  /** Whether the picture is zoomed in. */
  get zoomed(): boolean {
    return this.scale > 1.001;
  }

  /** Back to the whole picture in view. */
  reset(): void {
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.apply();
  }

  /** Zooms by `factor` around the centre of the picture's box. */
  zoomBy(factor: number): void {
    const w = this.canvas.clientWidth;
    const hgt = this.canvas.clientHeight;
    this.zoomAround(this.scale * factor, w / 2, hgt / 2, this.scale, this.tx, this.ty);
    this.apply();
  }

  private down(e: PointerEvent): void {
    if (e.pointerType !== "touch") return;
    e.preventDefault();
    this.canvas.focus();
    this.fingers.set(e.pointerId, { x: e.clientX, y: e.clientY, startX: e.clientX, startY: e.clientY, startedAt: e.timeStamp });
    window.clearTimeout(this.longPress);
    if (this.fingers.size === 1) {
      this.multi = false;
      const id = e.pointerId;
      this.longPress = window.setTimeout(() => this.pressedLong(id), LONG_PRESS_MS);
    } else {
      this.multi = true;
      this.startPinch();
    }
  }

  private pressedLong(id: number): void {
    const finger = this.fingers.get(id);
    if (!finger || this.multi || this.moved(finger)) return;
    this.multi = true; // consumed: lifting the finger is not a tap too
    this.click(finger.x, finger.y, 2);
  }

  private move(e: PointerEvent): void {
    const finger = this.fingers.get(e.pointerId);
    if (!finger) return;
    e.preventDefault();
    const dx = e.clientX - finger.x;
    const dy = e.clientY - finger.y;
    finger.x = e.clientX;
    finger.y = e.clientY;
    if (this.fingers.size >= 2) return this.pinchMove();
    if (this.zoomed && this.moved(finger)) {
      this.tx += dx;
      this.ty += dy;
      this.apply();
    }
  }

  private up(e: PointerEvent, cancelled: boolean): void {
    const finger = this.fingers.get(e.pointerId);
    if (!finger) return;
    e.preventDefault();
    this.fingers.delete(e.pointerId);
    window.clearTimeout(this.longPress);
    if (this.fingers.size >= 2) return this.startPinch();
    this.pinch = null;
    const tap = !cancelled && !this.multi && e.timeStamp - finger.startedAt <= TAP_MS && !this.moved(finger);
    if (tap) this.click(finger.startX, finger.startY, 1);
  }

  private moved(finger: Finger): boolean {
    return Math.hypot(finger.x - finger.startX, finger.y - finger.startY) > TAP_SLOP;
  }

  private twoFingers(): [Finger, Finger] | null {
    const [a, b] = [...this.fingers.values()];
    return a && b ? [a, b] : null;
  }

  private startPinch(): void {
    const pair = this.twoFingers();
    if (!pair) return;
    const [a, b] = pair;
    const box = this.canvas.parentElement?.getBoundingClientRect() ?? { left: 0, top: 0 };
    this.pinch = {
      dist: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)),
      midX: (a.x + b.x) / 2 - box.left,
      midY: (a.y + b.y) / 2 - box.top,
      scale: this.scale,
      tx: this.tx,
      ty: this.ty,
    };
  }

  private pinchMove(): void {
    const pair = this.twoFingers();
    const start = this.pinch;
    if (!pair || !start) return;
    const [a, b] = pair;
    const box = this.canvas.parentElement?.getBoundingClientRect() ?? { left: 0, top: 0 };
    const dist = Math.hypot(a.x - b.x, a.y - b.y);
    const midX = (a.x + b.x) / 2 - box.left;
    const midY = (a.y + b.y) / 2 - box.top;
    this.zoomAround(start.scale * (dist / start.dist), start.midX, start.midY, start.scale, start.tx, start.ty);
    // The fingers' midpoint also moves the picture.
    this.tx += midX - start.midX;
    this.ty += midY - start.midY;
    this.apply();
  }

  /** Sets the zoom to `next` keeping the stage point (x, y) over the same picture point. */
  private zoomAround(next: number, x: number, y: number, scale: number, tx: number, ty: number): void {
    const clamped = Math.min(MAX_ZOOM, Math.max(1, next));
    this.tx = x - ((x - tx) * clamped) / scale;
    this.ty = y - ((y - ty) * clamped) / scale;
    this.scale = clamped;
  }

  /** Keeps the zoomed picture covering its box (no empty margins pulled in) and draws it;
   * called again when the window changes size. */
  apply(): void {
    const w = this.canvas.clientWidth;
    const hgt = this.canvas.clientHeight;
    this.tx = Math.min(0, Math.max(w * (1 - this.scale), this.tx));
    this.ty = Math.min(0, Math.max(hgt * (1 - this.scale), this.ty));
    this.canvas.style.transform = this.zoomed ? `translate(${this.tx}px, ${this.ty}px) scale(${this.scale})` : "";
    this.onChange();
  }
}
