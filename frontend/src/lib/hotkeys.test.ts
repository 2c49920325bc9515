import { describe, expect, it } from "vitest";
import { isTypingTarget, keyToAction } from "./hotkeys";

const plain = [{ id: 7, hotkey: null }, { id: 8, hotkey: null }];
const keyed = [{ id: 7, hotkey: "k" }, { id: 8, hotkey: "2" }];

describe("keyToAction", () => {
  it("digits pick the n-th label when no label claims digits", () => {
    expect(keyToAction({ key: "1" }, plain, false)).toEqual({ type: "label", labelId: 7 });
    expect(keyToAction({ key: "2" }, plain, true)).toEqual({ type: "label", labelId: 8 });
    expect(keyToAction({ key: "3" }, plain, true)).toBeNull();
  });
  it("a label's own hotkey wins, and digits then belong to hotkeys only", () => {
    expect(keyToAction({ key: "k" }, keyed, true)).toEqual({ type: "label", labelId: 7 });
    expect(keyToAction({ key: "K" }, keyed, true)).toEqual({ type: "label", labelId: 7 });
    expect(keyToAction({ key: "2" }, keyed, true)).toEqual({ type: "label", labelId: 8 });
    expect(keyToAction({ key: "1" }, keyed, true)).toBeNull();
  });
  it("arrows nudge a selected box (shift = 10 px) and navigate otherwise", () => {
    expect(keyToAction({ key: "ArrowUp", shiftKey: true }, plain, true)).toEqual({ type: "nudge", dx: 0, dy: -1, shift: true });
    expect(keyToAction({ key: "ArrowLeft" }, plain, true)).toEqual({ type: "nudge", dx: -1, dy: 0, shift: false });
    expect(keyToAction({ key: "ArrowLeft" }, plain, false)).toEqual({ type: "prev" });
    expect(keyToAction({ key: "ArrowRight" }, plain, false)).toEqual({ type: "next" });
    expect(keyToAction({ key: "ArrowDown" }, plain, false)).toBeNull();
  });
  it("built-in keys", () => {
    expect(keyToAction({ key: "n" }, plain, false)).toEqual({ type: "newBox" });
    expect(keyToAction({ key: "Delete" }, plain, true)).toEqual({ type: "delete" });
    expect(keyToAction({ key: "Delete" }, plain, false)).toBeNull();
    expect(keyToAction({ key: "Enter" }, plain, false)).toEqual({ type: "accept" });
    // Backspace is the Mac's delete key: it deletes the selected box, and never rejects the image
    expect(keyToAction({ key: "Backspace" }, plain, true)).toEqual({ type: "delete" });
    expect(keyToAction({ key: "Backspace" }, plain, false)).toBeNull();
    expect(keyToAction({ key: "x" }, plain, true)).toEqual({ type: "reject" });
    expect(keyToAction({ key: "x" }, [{ id: 3, hotkey: "x" }], false)).toEqual({ type: "reject" });
    expect(keyToAction({ key: "?", shiftKey: true }, plain, false)).toEqual({ type: "help" });
    expect(keyToAction({ key: "a" }, plain, false)).toEqual({ type: "prev" });
    expect(keyToAction({ key: "D" }, plain, true)).toEqual({ type: "next" });
    expect(keyToAction({ key: "z", ctrlKey: true }, plain, false)).toEqual({ type: "undo" });
    expect(keyToAction({ key: "Z", metaKey: true, shiftKey: true }, plain, false)).toEqual({ type: "redo" });
    expect(keyToAction({ key: "y", ctrlKey: true }, plain, false)).toEqual({ type: "redo" });
    expect(keyToAction({ key: "1", ctrlKey: true }, plain, false)).toBeNull();
  });
  it("a label hotkey 'a' shadows A-navigation, but not N", () => {
    const l = [{ id: 1, hotkey: "a" }, { id: 2, hotkey: "n" }];
    expect(keyToAction({ key: "a" }, l, false)).toEqual({ type: "label", labelId: 1 });
    expect(keyToAction({ key: "n" }, l, false)).toEqual({ type: "newBox" });
  });
  it("form fields keep their keys", () => {
    expect(isTypingTarget({ tagName: "INPUT" } as unknown as EventTarget)).toBe(true);
    expect(isTypingTarget({ tagName: "DIV" } as unknown as EventTarget)).toBe(false);
    expect(isTypingTarget(null)).toBe(false);
  });
});
