import { describe, expect, it } from "vitest";
import { History, forward, inverse } from "./history";

const a = { label_id: 1, x1: 0, y1: 0, x2: 10, y2: 10 };
const b = { label_id: 2, x1: 5, y1: 5, x2: 15, y2: 15 };

describe("History", () => {
  it("undo reverts and redo re-applies in order", () => {
    const h = new History();
    h.push({ kind: "create", id: 1, after: a });
    h.push({ kind: "update", id: 1, before: a, after: b });
    const u = h.undo()!;
    expect(inverse(u)).toEqual({ kind: "update", id: 1, data: a });
    expect(inverse(h.undo()!)).toEqual({ kind: "delete", id: 1 });
    expect(h.undo()).toBeNull();
    expect(forward(h.redo()!)).toEqual({ kind: "create", oldId: 1, data: a });
    expect(h.canRedo).toBe(true);
  });
  it("a new edit drops the redo stack", () => {
    const h = new History();
    h.push({ kind: "create", id: 1, after: a });
    h.undo();
    h.push({ kind: "create", id: 2, after: b });
    expect(h.canRedo).toBe(false);
  });
  it("remap follows a re-created box to its new id", () => {
    const h = new History();
    h.push({ kind: "update", id: 1, before: a, after: b });
    h.push({ kind: "delete", id: 1, before: b });
    const del = h.undo()!;
    expect(inverse(del)).toEqual({ kind: "create", oldId: 1, data: b });
    h.remap(1, 9); // the server gave the re-created box id 9
    expect(inverse(h.undo()!)).toEqual({ kind: "update", id: 9, data: a });
    expect(forward(h.redo()!)).toEqual({ kind: "update", id: 9, data: b });
    expect(forward(h.redo()!)).toEqual({ kind: "delete", id: 9 });
  });
  it("keeps at most `limit` entries", () => {
    const h = new History(2);
    for (let i = 0; i < 5; i++) h.push({ kind: "create", id: i, after: a });
    expect(h.undoStack.map((o) => o.id)).toEqual([3, 4]);
  });
});
