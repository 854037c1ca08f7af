// Pointer and wheel: canvas coordinates are scaled to remote screen pixels.

import type { reach } from "../gen/reach.js";

/** DOM `buttons` bits already match the wire's: 1 left, 2 right, 4 middle → remap right/middle. */
export function wireButtons(domButtons: number): number {
  let bits = 0;
  if (domButtons & 1) bits |= 1; // left
  if (domButtons & 4) bits |= 2; // middle
  if (domButtons & 2) bits |= 4; // right
  if (domButtons & 8) bits |= 8; // back
  if (domButtons & 16) bits |= 16; // forward
  return bits;
}

/** Where the remote picture is drawn inside the canvas element (`object-fit: contain` letterboxes it). */
export function contentBox(canvas: HTMLCanvasElement): { left: number; top: number; scale: number } {
  const rect = canvas.getBoundingClientRect();
  const scale = Math.min(rect.width / Math.max(1, canvas.width), rect.height / Math.max(1, canvas.height)) || 1;
  return {
    left: rect.left + (rect.width - canvas.width * scale) / 2,
    top: rect.top + (rect.height - canvas.height * scale) / 2,
    scale,
  };
}

export function pointerEventOf(canvas: HTMLCanvasElement, event: MouseEvent, screen: number): reach.v1.IPointerEvent {
  const box = contentBox(canvas);
  const x = Math.round((event.clientX - box.left) / box.scale);
  const y = Math.round((event.clientY - box.top) / box.scale);
  return {
    x: Math.min(Math.max(0, x), canvas.width - 1),
    y: Math.min(Math.max(0, y), canvas.height - 1),
    buttons: wireButtons(event.buttons),
    screen,
  };
}

/** Wheel deltas in notches of 120, whatever unit the browser reports. */
export function wheelEventOf(event: WheelEvent): reach.v1.IWheelEvent {
  const perLine = event.deltaMode === WheelEvent.DOM_DELTA_PIXEL ? 1 / 100 : event.deltaMode === WheelEvent.DOM_DELTA_LINE ? 1 / 3 : 1;
  const notches = (delta: number) => Math.round(delta * perLine * 120);
  return { deltaX: notches(event.deltaX), deltaY: notches(event.deltaY) };
}
