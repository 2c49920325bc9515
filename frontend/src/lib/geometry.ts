// Box geometry of the editor, pure so it is unit-tested apart from React. Boxes are in pixels of
// the original image (x1 < x2, y1 < y2), as the API stores them; the view maps image → screen as
// screen = image * scale + (tx, ty).

export interface Pt { x: number; y: number }
export interface Rect { x1: number; y1: number; x2: number; y2: number }
export interface View { scale: number; tx: number; ty: number }
export type Handle = "nw" | "n" | "ne" | "e" | "se" | "s" | "sw" | "w";
export const HANDLES: Handle[] = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];

export const MIN_SIZE = 1; // the API needs x2 > x1; one pixel keeps a box grabbable
export const MIN_SCALE = 0.05;
export const MAX_SCALE = 40;

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
/** Tenths of a pixel: finer is noise from the mouse, and it keeps the stored numbers readable. */
export const round = (v: number) => Math.round(v * 10) / 10;
const roundRect = (r: Rect): Rect => ({ x1: round(r.x1), y1: round(r.y1), x2: round(r.x2), y2: round(r.y2) });

export const toScreen = (v: View, p: Pt): Pt => ({ x: p.x * v.scale + v.tx, y: p.y * v.scale + v.ty });
export const toImage = (v: View, p: Pt): Pt => ({ x: (p.x - v.tx) / v.scale, y: (p.y - v.ty) / v.scale });
export const rectToScreen = (v: View, r: Rect): Rect => {
  const a = toScreen(v, { x: r.x1, y: r.y1 });
  const b = toScreen(v, { x: r.x2, y: r.y2 });
  return { x1: a.x, y1: a.y, x2: b.x, y2: b.y };
};

/** The view that shows the whole image centred in the viewport. */
export function fitView(imgW: number, imgH: number, vpW: number, vpH: number, margin = 8): View {
  const scale = clamp(Math.min((vpW - 2 * margin) / imgW, (vpH - 2 * margin) / imgH), MIN_SCALE, MAX_SCALE);
  return { scale, tx: (vpW - imgW * scale) / 2, ty: (vpH - imgH * scale) / 2 };
}

/** Zoom by `factor` keeping the image point under the screen point `at` where it is. */
export function zoomAt(v: View, factor: number, at: Pt): View {
  const scale = clamp(v.scale * factor, MIN_SCALE, MAX_SCALE);
  const p = toImage(v, at);
  return { scale, tx: at.x - p.x * scale, ty: at.y - p.y * scale };
}

export const pan = (v: View, dx: number, dy: number): View => ({ ...v, tx: v.tx + dx, ty: v.ty + dy });

/** A box from two corners dragged in any direction, clamped into the image. */
export function fromCorners(a: Pt, b: Pt, w: number, h: number): Rect {
  return roundRect({
    x1: clamp(Math.min(a.x, b.x), 0, w), y1: clamp(Math.min(a.y, b.y), 0, h),
    x2: clamp(Math.max(a.x, b.x), 0, w), y2: clamp(Math.max(a.y, b.y), 0, h),
  });
}

export const isValid = (r: Rect, min = MIN_SIZE) => r.x2 - r.x1 >= min && r.y2 - r.y1 >= min;

/** Clamp every edge into 0..w × 0..h (a box partly outside is cut, not moved). */
export function clampRect(r: Rect, w: number, h: number): Rect {
  return { x1: clamp(r.x1, 0, w), y1: clamp(r.y1, 0, h), x2: clamp(r.x2, 0, w), y2: clamp(r.y2, 0, h) };
}

/** Translate keeping the size; stops at the image border instead of shrinking the box. */
export function moveRect(r: Rect, dx: number, dy: number, w: number, h: number): Rect {
  const bw = r.x2 - r.x1, bh = r.y2 - r.y1;
  const x1 = clamp(r.x1 + dx, 0, Math.max(0, w - bw));
  const y1 = clamp(r.y1 + dy, 0, Math.max(0, h - bh));
  return roundRect({ x1, y1, x2: x1 + bw, y2: y1 + bh });
}

/** Arrow-key nudge: 1 px, or 10 px with Shift. */
export const nudge = (r: Rect, dx: number, dy: number, shift: boolean, w: number, h: number) =>
  moveRect(r, dx * (shift ? 10 : 1), dy * (shift ? 10 : 1), w, h);

/** Drag handle `hd` to image point `p`: the handle's edges follow, the opposite ones stay; an
 *  edge cannot pass its opposite (it stops MIN_SIZE short), and nothing leaves the image. */
export function resizeRect(r: Rect, hd: Handle, p: Pt, w: number, h: number): Rect {
  const out = { ...r };
  const x = clamp(p.x, 0, w), y = clamp(p.y, 0, h);
  if (hd.includes("w")) out.x1 = Math.min(x, r.x2 - MIN_SIZE);
  if (hd.includes("e")) out.x2 = Math.max(x, r.x1 + MIN_SIZE);
  if (hd.includes("n")) out.y1 = Math.min(y, r.y2 - MIN_SIZE);
  if (hd.includes("s")) out.y2 = Math.max(y, r.y1 + MIN_SIZE);
  return roundRect(clampRect(out, w, h));
}

/** Where each handle sits on a rectangle (in the rectangle's own coordinates). */
export function handlePoint(r: Rect, hd: Handle): Pt {
  const cx = (r.x1 + r.x2) / 2, cy = (r.y1 + r.y2) / 2;
  return {
    x: hd.includes("w") ? r.x1 : hd.includes("e") ? r.x2 : cx,
    y: hd.includes("n") ? r.y1 : hd.includes("s") ? r.y2 : cy,
  };
}

/** The handle of a screen rectangle within `tol` screen pixels of `p`, if any. */
export function hitHandle(screen: Rect, p: Pt, tol = 6): Handle | null {
  for (const hd of HANDLES) {
    const q = handlePoint(screen, hd);
    if (Math.abs(q.x - p.x) <= tol && Math.abs(q.y - p.y) <= tol) return hd;
  }
  return null;
}

export const contains = (r: Rect, p: Pt) => p.x >= r.x1 && p.x <= r.x2 && p.y >= r.y1 && p.y <= r.y2;

/** The smallest box under an image point (a small box inside a big one stays reachable). */
export function hitBox<T extends Rect>(boxes: T[], p: Pt): T | null {
  let best: T | null = null;
  for (const b of boxes)
    if (contains(b, p) && (!best || (b.x2 - b.x1) * (b.y2 - b.y1) < (best.x2 - best.x1) * (best.y2 - best.y1))) best = b;
  return best;
}

export const sameRect = (a: Rect, b: Rect) => a.x1 === b.x1 && a.y1 === b.y1 && a.x2 === b.x2 && a.y2 === b.y2;
