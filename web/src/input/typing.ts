// "Type clipboard": text turned into physical key presses (US layout), for remote programs that
// ignore paste (terminals, consoles, BIOS-like screens). Sent at a pace under the relay's input
// limit (200 events/s per viewer; each character is two or four events).

import type { reach } from "../gen/reach.js";

/** Characters per second: with Shift a character is four events, so 40/s stays under 200. */
export const TYPE_RATE_PER_SEC = 40;

/** Longest text typed at once (a paragraph, not a document). */
export const TYPE_MAX_CHARS = 2000;

const SHIFTED: Record<string, string> = {
  "!": "Digit1", "@": "Digit2", "#": "Digit3", $: "Digit4", "%": "Digit5", "^": "Digit6", "&": "Digit7",
  "*": "Digit8", "(": "Digit9", ")": "Digit0", _: "Minus", "+": "Equal", "{": "BracketLeft",
  "}": "BracketRight", "|": "Backslash", ":": "Semicolon", '"': "Quote", "<": "Comma", ">": "Period",
  "?": "Slash", "~": "Backquote",
};

const PLAIN: Record<string, string> = {
  " ": "Space", "\n": "Enter", "\t": "Tab", "-": "Minus", "=": "Equal", "[": "BracketLeft",
  "]": "BracketRight", "\\": "Backslash", ";": "Semicolon", "'": "Quote", ",": "Comma", ".": "Period",
  "/": "Slash", "`": "Backquote",
};

/** One character as a physical key and whether Shift is held; `null` when the US layout has none. */
export function keyFor(ch: string): { code: string; shift: boolean } | null {
  if (/^[a-z]$/.test(ch)) return { code: `Key${ch.toUpperCase()}`, shift: false };
  if (/^[A-Z]$/.test(ch)) return { code: `Key${ch}`, shift: true };
  if (/^[0-9]$/.test(ch)) return { code: `Digit${ch}`, shift: false };
  if (PLAIN[ch]) return { code: PLAIN[ch], shift: false };
  if (SHIFTED[ch]) return { code: SHIFTED[ch], shift: true };
  return null;
}

/** The key events that type `text`, or the first character that cannot be typed. */
export function keyEventsFor(text: string): { events: reach.v1.IKeyEvent[][] } | { untypable: string } {
  const events: reach.v1.IKeyEvent[][] = [];
  for (const ch of text.replace(/\r\n?/g, "\n")) {
    const key = keyFor(ch);
    if (!key) return { untypable: ch };
    const press = (code: string, down: boolean): reach.v1.IKeyEvent => ({ code, scancode: 0, extended: false, modifiers: key.shift ? 1 : 0, down });
    const one = [press(key.code, true), press(key.code, false)];
    events.push(key.shift ? [press("ShiftLeft", true), ...one, press("ShiftLeft", false)] : one);
  }
  return { events };
}
