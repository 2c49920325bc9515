import { describe, expect, it } from "vitest";
import {
  MAX_SCALE, fitView, fromCorners, hitBox, hitHandle, isValid, moveRect, nudge, pan, rectToScreen, resizeRect,
  toImage, toScreen, zoomAt, clampRect, handlePoint,
} from "./geometry";

const W = 640, H = 480;

describe("transforms", () => {
  it("image → screen → image round-trips under zoom and pan", () => {
    const v = { scale: 2.5, tx: -37, ty: 12 };
    const p = { x: 123.4, y: 56.7 };
    const s = toScreen(v, p);
    expect(s).toEqual({ x: 123.4 * 2.5 - 37, y: 56.7 * 2.5 + 12 });
    const back = toImage(v, s);
    expect(back.x).toBeCloseTo(p.x, 9);
    expect(back.y).toBeCloseTo(p.y, 9);
  });
  it("fit centres the whole image", () => {
    const v = fitView(W, H, 1000, 500, 0);
    expect(v.scale).toBeCloseTo(500 / 480);
    expect(toScreen(v, { x: W / 2, y: H / 2 })).toEqual({ x: 500, y: 250 });
    expect(toScreen(v, { x: 0, y: 0 }).y).toBeCloseTo(0);
  });
  it("zoom keeps the point under the cursor fixed", () => {
    const v = { scale: 1, tx: 10, ty: 20 };
    const at = { x: 300, y: 200 };
    const before = toImage(v, at);
    const z = zoomAt(v, 2, at);
    expect(z.scale).toBe(2);
    const after = toImage(z, at);
    expect(after.x).toBeCloseTo(before.x);
    expect(after.y).toBeCloseTo(before.y);
  });
  it("zoom is bounded", () => {
    expect(zoomAt({ scale: 30, tx: 0, ty: 0 }, 10, { x: 0, y: 0 }).scale).toBe(MAX_SCALE);
  });
  it("pan shifts the screen position, not the image position of boxes", () => {
    const v = pan({ scale: 2, tx: 0, ty: 0 }, 15, -5);
    expect(rectToScreen(v, { x1: 1, y1: 1, x2: 2, y2: 2 })).toEqual({ x1: 17, y1: -3, x2: 19, y2: -1 });
  });
});

describe("draw", () => {
  it("normalises a drag in any direction", () => {
    expect(fromCorners({ x: 50, y: 60 }, { x: 10, y: 20 }, W, H)).toEqual({ x1: 10, y1: 20, x2: 50, y2: 60 });
  });
  it("clamps a drag that leaves the image", () => {
    expect(fromCorners({ x: -5, y: 400 }, { x: 700, y: 900 }, W, H)).toEqual({ x1: 0, y1: 400, x2: W, y2: H });
  });
  it("rounds to tenths and rejects a click without drag", () => {
    const r = fromCorners({ x: 10.04, y: 10 }, { x: 10.3, y: 10.2 }, W, H);
    expect(r).toEqual({ x1: 10, y1: 10, x2: 10.3, y2: 10.2 });
    expect(isValid(r)).toBe(false);
    expect(isValid({ x1: 0, y1: 0, x2: 1, y2: 1 })).toBe(true);
  });
});

describe("move and nudge", () => {
  const r = { x1: 100, y1: 100, x2: 200, y2: 150 };
  it("moves keeping the size", () => {
    expect(moveRect(r, 10, -20, W, H)).toEqual({ x1: 110, y1: 80, x2: 210, y2: 130 });
  });
  it("stops at the border without shrinking", () => {
    expect(moveRect(r, 1000, 1000, W, H)).toEqual({ x1: W - 100, y1: H - 50, x2: W, y2: H });
    expect(moveRect(r, -1000, -1000, W, H)).toEqual({ x1: 0, y1: 0, x2: 100, y2: 50 });
  });
  it("nudges 1 px, or 10 with shift", () => {
    expect(nudge(r, 1, 0, false, W, H).x1).toBe(101);
    expect(nudge(r, 0, -1, true, W, H).y1).toBe(90);
    expect(nudge({ x1: 0, y1: 0, x2: 5, y2: 5 }, -1, 0, true, W, H).x1).toBe(0);
  });
});

describe("resize", () => {
  const r = { x1: 100, y1: 100, x2: 200, y2: 150 };
  it("moves only the dragged edges", () => {
    expect(resizeRect(r, "se", { x: 250, y: 170 }, W, H)).toEqual({ x1: 100, y1: 100, x2: 250, y2: 170 });
    expect(resizeRect(r, "n", { x: 999, y: 80 }, W, H)).toEqual({ x1: 100, y1: 80, x2: 200, y2: 150 });
    expect(resizeRect(r, "w", { x: 90, y: 0 }, W, H)).toEqual({ x1: 90, y1: 100, x2: 200, y2: 150 });
  });
  it("cannot cross the opposite edge", () => {
    const out = resizeRect(r, "e", { x: 20, y: 0 }, W, H);
    expect(out.x2).toBe(101);
    expect(isValid(out)).toBe(true);
  });
  it("clamps into the image", () => {
    expect(resizeRect(r, "nw", { x: -50, y: -50 }, W, H)).toEqual({ x1: 0, y1: 0, x2: 200, y2: 150 });
    expect(clampRect({ x1: -1, y1: 2, x2: 700, y2: 500 }, W, H)).toEqual({ x1: 0, y1: 2, x2: W, y2: H });
  });
  it("finds handles within tolerance on the screen rectangle", () => {
    const s = { x1: 10, y1: 10, x2: 110, y2: 60 };
    expect(handlePoint(s, "e")).toEqual({ x: 110, y: 35 });
    expect(hitHandle(s, { x: 113, y: 58 })).toBe("se");
    expect(hitHandle(s, { x: 60, y: 8 })).toBe("n");
    expect(hitHandle(s, { x: 60, y: 35 })).toBeNull();
  });
  it("hit-tests the smallest box under a point", () => {
    const big = { id: 1, x1: 0, y1: 0, x2: 300, y2: 300 };
    const small = { id: 2, x1: 10, y1: 10, x2: 20, y2: 20 };
    expect(hitBox([big, small], { x: 15, y: 15 })?.id).toBe(2);
    expect(hitBox([big, small], { x: 150, y: 15 })?.id).toBe(1);
    expect(hitBox([big, small], { x: 350, y: 15 })).toBeNull();
  });
});
