// The key-sending field for touch screens: a text field whose on-screen keyboard types on the
// remote machine. Characters become US-layout key presses (as "Type clipboard" does); Enter,
// Backspace, Tab, Escape and the arrows are sent as those keys. The field stays empty.

import type { reach } from "../gen/reach.js";
import { keyEventsFor } from "../input/typing";

/** Named keys sent as themselves (on-screen keyboards report them as keydown). */
const NAMED: Record<string, { code: string; extended: boolean }> = {
  Enter: { code: "Enter", extended: false },
  Backspace: { code: "Backspace", extended: false },
  Tab: { code: "Tab", extended: false },
  Escape: { code: "Escape", extended: false },
  ArrowUp: { code: "ArrowUp", extended: true },
  ArrowDown: { code: "ArrowDown", extended: true },
  ArrowLeft: { code: "ArrowLeft", extended: true },
  ArrowRight: { code: "ArrowRight", extended: true },
};

function tap(code: string, extended: boolean): reach.v1.IKeyEvent[] {
  const press = (down: boolean): reach.v1.IKeyEvent => ({ code, scancode: 0, extended, modifiers: 0, down });
  return [press(true), press(false)];
}

/** Wires `field` so what is typed into it goes to `send`; `onUntypable` names a character the
 * US layout cannot type. */
export function wireKeysField(
  field: HTMLInputElement,
  send: (key: reach.v1.IKeyEvent) => void,
  onUntypable: (ch: string) => void,
): void {
  field.addEventListener("keydown", (event) => {
    const named = NAMED[event.key];
    if (!named || event.isComposing) return;
    event.preventDefault();
    for (const key of tap(named.code, named.extended)) send(key);
  });
  field.addEventListener("input", (event) => {
    const input = event as InputEvent;
    if (input.isComposing) return;
    if (input.inputType === "deleteContentBackward") {
      for (const key of tap("Backspace", false)) send(key);
    } else if (field.value) {
      typeText(field.value, send, onUntypable);
    }
    field.value = "";
  });
  field.addEventListener("compositionend", () => {
    if (field.value) typeText(field.value, send, onUntypable);
    field.value = "";
  });
}

function typeText(text: string, send: (key: reach.v1.IKeyEvent) => void, onUntypable: (ch: string) => void): void {
  const keys = keyEventsFor(text);
  if ("untypable" in keys) return onUntypable(keys.untypable);
  for (const group of keys.events) for (const key of group) send(key);
}
