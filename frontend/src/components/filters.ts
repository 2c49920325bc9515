import type { ImageFilters, ImageStatus } from "../api/client";

// The grid's filters live in the URL, so a reload, a shared link and the editor's ←/→ see the same list.
export function filtersFromParams(p: URLSearchParams): ImageFilters {
  const hb = p.get("has_boxes");
  return {
    status: (p.get("status") ?? "") as ImageStatus | "",
    label: p.get("label") ?? "",
    split: p.get("split") ?? "",
    has_boxes: hb === null || hb === "" ? "" : hb === "true",
    q: p.get("q") ?? "",
    meta_key: p.get("meta_key") ?? "",
    meta_value: p.get("meta_value") ?? "",
  };
}

export function filtersToParams(f: ImageFilters): URLSearchParams {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  return p;
}
