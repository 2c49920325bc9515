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

