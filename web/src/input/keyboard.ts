// Keys travel by physical key (`KeyboardEvent.code`), never by character, so the remote layout
// decides what a key types. Every key this viewer pressed is released on blur or close.

import type { reach } from "../gen/reach.js";

const MODIFIER_BITS: [string, number][] = [
  ["Shift", 1 << 0],
  ["Control", 1 << 1],
  ["Alt", 1 << 2],
  ["Meta", 1 << 3],
  ["AltGraph", 1 << 4],
  ["CapsLock", 1 << 5],
  ["NumLock", 1 << 6],
];

/** Codes that are E0-extended on a PC keyboard (right modifiers, navigation block, keypad / and Enter). */
const EXTENDED = new Set([
  "ControlRight", "AltRight", "MetaLeft", "MetaRight", "ContextMenu",
  "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight",
  "Insert", "Delete", "Home", "End", "PageUp", "PageDown",
  "NumpadDivide", "NumpadEnter", "PrintScreen",
]);

/** Combinations the browser would act on itself unless "send system keys" is on. */
const SYSTEM_CODES = new Set(["MetaLeft", "MetaRight", "Tab", "Escape"]);

export function modifiersOf(event: KeyboardEvent): number {
  let bits = 0;
  for (const [key, bit] of MODIFIER_BITS) if (event.getModifierState(key)) bits |= bit;
  return bits;
}

export function keyEventOf(event: KeyboardEvent, down: boolean): reach.v1.IKeyEvent {
  return { code: event.code, scancode: 0, extended: EXTENDED.has(event.code), modifiers: modifiersOf(event), down };
}

export class KeyboardForwarder {
  private readonly held = new Set<string>();
  sendSystemKeys = false;

  constructor(private readonly send: (key: reach.v1.IKeyEvent) => void) {}

  handle(event: KeyboardEvent, down: boolean): void {
    if (!event.code) return;
    const system = SYSTEM_CODES.has(event.code) && (event.altKey || event.ctrlKey || event.metaKey || event.code.startsWith("Meta"));
    if (system && !this.sendSystemKeys) return;
    event.preventDefault();
    if (down) this.held.add(event.code);
    else if (!this.held.delete(event.code)) return; // Never send an up for a key we did not press.
    this.send(keyEventOf(event, down));
  }

  /** Sends key-ups for every key still held (blur, close, leaving fullscreen). */
  releaseAll(): void {
    for (const code of this.held) {
      this.send({ code, scancode: 0, extended: EXTENDED.has(code), modifiers: 0, down: false });
    }
    this.held.clear();
  }

  get heldCount(): number {
    return this.held.size;
  }
}
