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

export function pointerEventOf(canvas: HTMLCanvasElement, event: MouseEvent, screen: number): reach.v1.IPointerEvent {
  const rect = canvas.getBoundingClientRect();
  const scaleX = canvas.width / Math.max(1, rect.width);
  const scaleY = canvas.height / Math.max(1, rect.height);
  const x = Math.round((event.clientX - rect.left) * scaleX);
  const y = Math.round((event.clientY - rect.top) * scaleY);
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
