// Which images a run (or export) would use under a review-status filter: the names and rules of
// backend/review_status.py, applied to the per-(split, status) counts of /images/counts.
import type { ImageStatus } from "../api/client";

export type StatusFilter = "not_rejected" | "accepted" | "all" | ImageStatus;
export interface StatusCount { split: string | null; status: ImageStatus; n: number }

export const STATUS_FILTERS: [StatusFilter, string][] = [
  ["not_rejected", "everything but rejected"], ["accepted", "only accepted (reviewed work)"], ["all", "all images"],
];

export const STATUS_COLORS: Record<ImageStatus, string> = {
  unlabeled: "#9e9e9e", in_review: "#f0a030", accepted: "#2e9d4f", rejected: "#d43c3c",
};

export function passes(filter: StatusFilter, status: ImageStatus): boolean {
  if (filter === "all") return true;
  if (filter === "not_rejected") return status !== "rejected";
  return status === filter;
}

/** Images of `splits` (all splits when null) that pass `filter`. */
export function imagesUsed(counts: StatusCount[], filter: StatusFilter, splits: string[] | null = null): number {
  return counts.filter((c) => passes(filter, c.status) && (splits === null || (c.split !== null && splits.includes(c.split))))
    .reduce((a, c) => a + c.n, 0);
}

/** "a train run uses 4 of 6 train+test images (not_rejected)". */
export function runUseText(counts: StatusCount[], filter: StatusFilter, splits: string[]): string {
  const used = imagesUsed(counts, filter, splits);
  const all = imagesUsed(counts, "all", splits);
  return `a run would use ${used} of ${all} ${splits.join("+")} images (${filter})`;
}
