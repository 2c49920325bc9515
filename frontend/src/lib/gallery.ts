// The comparison gallery's pure parts: its filters <-> the page URL and the API query, the boxes
// of each panel as overlay shapes, and the per-image change in words.
import type { GalleryBox, GalleryQuery, ImageStats } from "../api/client";

export const SORTS = [["most_improved", "most improved first"], ["most_regressed", "most regressed first"], ["image", "image id"]] as const;
export const ERRORS = [["", "any"], ["missed", "missed box (false negative)"], ["false_box", "false box (false positive)"],
  ["wrong_label", "wrong label"]] as const;
export const PAGE = 12;

export interface GalleryState { sort: NonNullable<GalleryQuery["sort"]>; label: string; error: NonNullable<GalleryQuery["error"]>; offset: number }

const SORT_SET = new Set(SORTS.map((s) => s[0] as string));
const ERROR_SET = new Set(ERRORS.map((e) => e[0] as string));

/** The filters from the page's query string (a shared link shows the same page); bad values -> defaults. */
export function parseState(search: string | URLSearchParams): GalleryState {
  const p = typeof search === "string" ? new URLSearchParams(search) : search;
  const sort = p.get("sort") ?? "", error = p.get("error") ?? "", offset = Number(p.get("offset") ?? 0);
  return {
    sort: (SORT_SET.has(sort) ? sort : "most_improved") as GalleryState["sort"],
    label: p.get("label") ?? "",
    error: (ERROR_SET.has(error) ? error : "") as GalleryState["error"],
    offset: Number.isInteger(offset) && offset > 0 ? offset : 0,
  };
}

/** The page's query string: only what differs from the defaults. */
export function stateToSearch(s: GalleryState): string {
  const p = new URLSearchParams();
  if (s.sort !== "most_improved") p.set("sort", s.sort);
  if (s.label) p.set("label", s.label);
  if (s.error) p.set("error", s.error);
  if (s.offset) p.set("offset", String(s.offset));
  return p.toString();
}

/** GET /api/runs/{id}/gallery's query (buildQuery drops the empty label / error). */
export function apiQuery(s: GalleryState, limit = PAGE): GalleryQuery {
  return { sort: s.sort, label: s.label, error: s.error, offset: s.offset, limit };
}

export interface Shape { x1: number; y1: number; x2: number; y2: number; text: string; color: string }

/** The panel's boxes for BoxOverlay: label (and score, for predictions) as text, coloured by label. */
export function shapes(boxes: GalleryBox[] | null, colorOf: (label: string) => string): Shape[] {
  return (boxes ?? []).map((b) => ({
    x1: b.box[0], y1: b.box[1], x2: b.box[2], y2: b.box[3], color: colorOf(b.label),
    text: b.score == null ? b.label : `${b.label} ${b.score.toFixed(2)}`,
  }));
}

/** "F1 0.50 · 1 TP · 1 missed · 0 false · 0 wrong label" for one panel. */
export function statsText(s: ImageStats | null): string {
  if (!s) return "not evaluated";
  return `F1 ${s.f1.toFixed(2)} · ${s.tp} TP · ${s.fn} missed · ${s.fp} false · ${s.wrong_label} wrong label`;
}

/** "improved by 0.33 F1", "regressed by 0.20 F1", "unchanged", or "" (an evaluate run has one phase). */
export function changeText(change: number | null): string {
  if (change == null) return "";
  if (Math.abs(change) < 1e-9) return "unchanged";
  return `${change > 0 ? "improved" : "regressed"} by ${Math.abs(change).toFixed(2)} F1`;
}
