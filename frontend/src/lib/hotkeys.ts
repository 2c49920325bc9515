// The editor's keyboard map, pure: a key event (and whether a box is selected) → one action.
// Built-in keys (N, V, Delete/Backspace, arrows, Enter, X, ?, Escape, Ctrl+Z/Y) always win; then a
// label's own hotkey; then a digit picks the n-th label when no label claims it; A/D navigate last.
// Delete and Backspace (the Mac's delete key) only ever delete the selected box: rejecting an
// image needs its own key (X), so a reflex delete can never throw an image's review away.

export type Action =
  | { type: "label"; labelId: number }
  | { type: "newBox" }
  | { type: "selectMode" }
  | { type: "delete" }
  | { type: "nudge"; dx: number; dy: number; shift: boolean }
  | { type: "prev" }
  | { type: "next" }
  | { type: "accept" }
  | { type: "reject" }
  | { type: "undo" }
  | { type: "redo" }
  | { type: "deselect" }
  | { type: "help" };

/** Every shortcut, for the `?` overlay and the help text (one list, so they cannot drift apart). */
export const SHORTCUTS: [string, string][] = [
  ["1–9 / label hotkey", "pick the label (relabels the selected box)"],
  ["N", "draw mode (drag on empty image draws; drag inside a box moves it; Shift+drag draws inside a box)"],
  ["V", "select / pan mode"],
  ["Delete / Backspace", "delete the selected box (never changes the image's status)"],
  ["← → ↑ ↓", "nudge the selected box 1 px (Shift: 10 px); ← / → with nothing selected: previous / next image"],
  ["A / D", "previous / next image"],
  ["Enter", "accept the image and go to the next"],
  ["X", "reject the image and go to the next"],
  ["Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y)", "undo / redo (box edits and status changes)"],
  ["Escape", "deselect; close this list"],
  ["Space+drag / right-drag", "pan"],
  ["wheel", "zoom"],
  ["?", "show this list"],
];

export interface KeyLike { key: string; shiftKey?: boolean; ctrlKey?: boolean; metaKey?: boolean; altKey?: boolean }
export interface LabelKey { id: number; hotkey?: string | null }

const ARROWS: Record<string, [number, number]> = {
  ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1],
};

export function keyToAction(e: KeyLike, labels: LabelKey[], hasSelection: boolean): Action | null {
  const mod = e.ctrlKey || e.metaKey;
  const k = e.key;
  if (mod) {
    if (k.toLowerCase() === "z") return e.shiftKey ? { type: "redo" } : { type: "undo" };
    if (k.toLowerCase() === "y") return { type: "redo" };
    return null;
  }
  if (e.altKey) return null;
  if (k in ARROWS) {
    const [dx, dy] = ARROWS[k];
    if (hasSelection) return { type: "nudge", dx, dy, shift: !!e.shiftKey };
    if (dx < 0) return { type: "prev" };
    if (dx > 0) return { type: "next" };
    return null;
  }
  if (k === "Delete" || k === "Backspace") return hasSelection ? { type: "delete" } : null;
  if (k === "Enter") return { type: "accept" };
  if (k === "x" || k === "X") return { type: "reject" };
  if (k === "?") return { type: "help" };
  if (k === "Escape") return { type: "deselect" };
  if (k === "n" || k === "N") return { type: "newBox" };
  if (k === "v" || k === "V") return { type: "selectMode" };
  const own = labels.find((l) => l.hotkey != null && l.hotkey.toLowerCase() === k.toLowerCase());
  if (own) return { type: "label", labelId: own.id };
  if (/^[1-9]$/.test(k)) {
    const claimed = labels.some((l) => l.hotkey != null && /^[0-9]$/.test(l.hotkey));
    const l = labels[Number(k) - 1];
    if (!claimed && l) return { type: "label", labelId: l.id };
    return null;
  }
  if (k === "a" || k === "A") return { type: "prev" };
  if (k === "d" || k === "D") return { type: "next" };
  return null;
}

/** Key events typed into a form field belong to the field, not to the editor. */
export function isTypingTarget(t: EventTarget | null): boolean {
  const el = t as { tagName?: string; isContentEditable?: boolean } | null;
  if (!el || !el.tagName) return false;
  return el.isContentEditable === true || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName);
}
