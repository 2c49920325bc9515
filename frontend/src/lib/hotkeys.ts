// The editor's keyboard map, pure: a key event (and whether a box is selected) → one action.
// Built-in keys (N, Delete, arrows, Enter, Backspace, Escape, Ctrl+Z/Y) always win; then a
// label's own hotkey; then a digit picks the n-th label when no label claims it; A/D navigate last.

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
  | { type: "deselect" };

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
  if (k === "Delete") return hasSelection ? { type: "delete" } : null;
  if (k === "Enter") return { type: "accept" };
  if (k === "Backspace") return { type: "reject" };
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
