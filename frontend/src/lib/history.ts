// Undo / redo of box edits, pure. Each entry records what changed; undoing one is itself a change
// the editor saves through the API. Re-creating a deleted box gives it a new server id, so the
// stacks rewrite the old id to the new one (`remap`) to keep later entries pointing at it.

export interface BoxData { label_id: number; x1: number; y1: number; x2: number; y2: number }
export type Op =
  | { kind: "create"; id: number; after: BoxData }
  | { kind: "update"; id: number; before: BoxData; after: BoxData }
  | { kind: "delete"; id: number; before: BoxData };

/** What to do to the boxes to apply (`redo`) or revert (`undo`) an entry. */
export type Change =
  | { kind: "create"; oldId: number; data: BoxData }
  | { kind: "update"; id: number; data: BoxData }
  | { kind: "delete"; id: number };

export function inverse(op: Op): Change {
  switch (op.kind) {
    case "create": return { kind: "delete", id: op.id };
    case "update": return { kind: "update", id: op.id, data: op.before };
    case "delete": return { kind: "create", oldId: op.id, data: op.before };
  }
}

export function forward(op: Op): Change {
  switch (op.kind) {
    case "create": return { kind: "create", oldId: op.id, data: op.after };
    case "update": return { kind: "update", id: op.id, data: op.after };
    case "delete": return { kind: "delete", id: op.id };
  }
}

export class History {
  undoStack: Op[] = [];
  redoStack: Op[] = [];
  constructor(private limit = 200) {}

  push(op: Op) {
    this.undoStack.push(op);
    if (this.undoStack.length > this.limit) this.undoStack.shift();
    this.redoStack = [];
  }
  /** The entry to revert, moved to the redo stack. */
  undo(): Op | null {
    const op = this.undoStack.pop() ?? null;
    if (op) this.redoStack.push(op);
    return op;
  }
  redo(): Op | null {
    const op = this.redoStack.pop() ?? null;
    if (op) this.undoStack.push(op);
    return op;
  }
  remap(oldId: number, newId: number) {
    for (const s of [this.undoStack, this.redoStack]) for (const op of s) if (op.id === oldId) op.id = newId;
  }
  clear() {
    this.undoStack = [];
    this.redoStack = [];
  }
  get canUndo() { return this.undoStack.length > 0; }
  get canRedo() { return this.redoStack.length > 0; }
}
