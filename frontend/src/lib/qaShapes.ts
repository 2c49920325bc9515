import type { OverlayBox } from "../components/BoxOverlay";

interface ParamBox { label?: string; x1: number; y1: number; x2: number; y2: number }
const isBox = (v: unknown): v is ParamBox =>
  !!v && typeof v === "object" && ["x1", "y1", "x2", "y2"].every((k) => typeof (v as Record<string, unknown>)[k] === "number");

/** What a pair refers to: `params.boxes` (backend/qa/base.py), pixels of the original image, in the
 *  order of the {box0}, {box1} placeholders; a region has the label "region" and is drawn dashed. */
export function paramShapes(params: Record<string, unknown>): OverlayBox[] {
  const boxes = Array.isArray(params?.boxes) ? params.boxes : [];
  return boxes.filter(isBox).map((b, i) => {
    const region = b.label === "region";
    return { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, text: `${i}: ${b.label ?? ""}`, color: region ? "#00e5ff" : "#ffcc00", dashed: region };
  });
}


export interface UnionBox { label: string; x1: number; y1: number; x2: number; y2: number; n: number }
const keyOf = (b: ParamBox) => `${b.label ?? ""}|${Math.round(b.x1)}|${Math.round(b.y1)}|${Math.round(b.x2)}|${Math.round(b.y2)}`;

/** The distinct boxes the pairs of one image refer to, numbered 1.. in order of first use: the
 *  review page draws each once with its number, and each pair says which numbers its {boxN} are. */
export function unionBoxes(pairs: { params: Record<string, unknown> }[]): UnionBox[] {
  const seen = new Map<string, UnionBox>();
  for (const p of pairs) {
    const boxes = Array.isArray(p.params?.boxes) ? p.params.boxes : [];
    for (const b of boxes.filter(isBox)) {
      const k = keyOf(b);
      if (!seen.has(k)) seen.set(k, { label: b.label ?? "", x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, n: seen.size + 1 });
    }
  }
  return [...seen.values()];
}

/** For a pair: "{box0} = #2" for each of its boxes (its numbers in `unionBoxes`). */
export function boxRefs(params: Record<string, unknown>, union: UnionBox[]): string[] {
  const boxes = Array.isArray(params?.boxes) ? params.boxes : [];
  const num = new Map(union.map((u) => [keyOf(u), u.n]));
  return boxes.filter(isBox).map((b, i) => `{box${i}} = #${num.get(keyOf(b)) ?? "?"} ${b.label ?? ""}`.trim());
}
