// The remote cursor, drawn on its own small canvas over the screen so cursor moves cost no
// video frame. Shapes arrive as straight RGBA with a hotspot; positions in remote pixels.

import type { reach } from "../gen/reach.js";
import { contentBox } from "../input/pointer";

/** Largest cursor image accepted (bounds allocation). */
const MAX_CURSOR_SIDE = 256;

export class RemoteCursor {
  private hotX = 0;
  private hotY = 0;
  private x = 0;
  private y = 0;
  private visible = false;

  constructor(
    private readonly element: HTMLCanvasElement,
    private readonly screen: HTMLCanvasElement,
  ) {}

  setShape(shape: reach.v1.ICursorShape): void {
    const width = shape.width ?? 0;
    const height = shape.height ?? 0;
    const rgba = shape.rgba;
    if (!width || !height || width > MAX_CURSOR_SIDE || height > MAX_CURSOR_SIDE) return;
    if (!rgba || rgba.length !== width * height * 4) return;
    this.element.width = width;
    this.element.height = height;
    this.element.getContext("2d")?.putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
    this.hotX = shape.hotspotX ?? 0;
    this.hotY = shape.hotspotY ?? 0;
    this.place();
  }

  setPosition(position: reach.v1.ICursorPosition): void {
    this.x = position.x ?? 0;
    this.y = position.y ?? 0;
    this.visible = position.visible ?? true;
    this.place();
  }

  /** Re-positions after a move or a resize of the screen canvas. */
  place(): void {
    const box = contentBox(this.screen);
    const stage = this.element.parentElement?.getBoundingClientRect();
    if (!stage) return;
    this.element.style.display = this.visible ? "block" : "none";
    this.element.style.width = `${this.element.width * box.scale}px`;
    this.element.style.height = `${this.element.height * box.scale}px`;
    this.element.style.left = `${box.left - stage.left + (this.x - this.hotX) * box.scale}px`;
    this.element.style.top = `${box.top - stage.top + (this.y - this.hotY) * box.scale}px`;
  }
}
