import { STATUSES } from "../api/client";
import { imagesUsed, STATUS_COLORS } from "../lib/status";
import { useStatusCounts } from "./useStatusCounts";

/** What a train run would use (train + test splits) under the two usual status filters, and the status legend. */
export function RunUse({ pid, reload }: { pid: number; reload: string | number }) {
  const counts = useStatusCounts(pid, reload);
  if (!counts) return null;
  const splits = ["train", "test"];
  return (
    <p className="muted small run-use" data-testid="run-use">
      A run on train + test would use <b>{imagesUsed(counts, "not_rejected", splits)}</b> images (all but rejected),
      {" "}<b>{imagesUsed(counts, "accepted", splits)}</b> with “only accepted”, of {imagesUsed(counts, "all", splits)}.
      <span className="legend" aria-label="Status legend">
        {STATUSES.map((s) => <span key={s}><i className="dot" style={{ background: STATUS_COLORS[s] }} /> {s.replace("_", " ")}</span>)}
        <span><i className="split-tag">split</i> split</span>
      </span>
    </p>
  );
}
