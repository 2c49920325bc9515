import type { Label } from "../api/client";

export interface OverlayBox { x1: number; y1: number; x2: number; y2: number; label_id?: number | null; text?: string; color?: string; dashed?: boolean }

/** Boxes in original-image pixels drawn over an image shown with object-fit: contain. The viewBox
 *  is the image's own size, so the browser scales the boxes exactly as it scales the picture. */
export function BoxOverlay({ width, height, boxes, labels }: { width: number; height: number; boxes: OverlayBox[]; labels: Label[] }) {
  const byId = new Map(labels.map((l) => [l.id, l]));
  const fs = Math.max(width, height) / 14; // in image pixels: about 11 px on a 160 px thumbnail
  return (
    <svg className="overlay" viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="xMidYMid meet" aria-hidden>
      {boxes.map((b, i) => {
        const l = b.label_id != null ? byId.get(b.label_id) : undefined;
        const color = b.color ?? l?.color ?? "#ffcc00";
        const text = b.text ?? l?.name;
        return (
          <g key={i}>
            <rect x={b.x1} y={b.y1} width={b.x2 - b.x1} height={b.y2 - b.y1} fill="none" stroke={color}
              strokeWidth={2} vectorEffect="non-scaling-stroke" strokeDasharray={b.dashed ? "6 4" : undefined} />
            {text && <text x={b.x1 + fs * 0.2} y={b.y1 + fs} fontSize={fs} fill={color}>{text}</text>}
          </g>
        );
      })}
    </svg>
  );
}
