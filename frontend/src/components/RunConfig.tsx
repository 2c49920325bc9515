// A run's configuration as a reader wants it (base model, method, rank, learning rate, steps, splits,
// the snapshot's hash) and its headline result; every other key in a fold.
import { Fragment } from "react";
import type { RunView } from "../api/client";
import { CONFIG_KEYS, formatValue, headline, shortModel } from "../lib/compare";
import { fmt } from "../lib/runs";

const NAMES: Record<string, string> = {
  base_model: "Base model", family: "Family", method: "Method", rank: "Rank r", alpha: "Alpha", learning_rate: "Learning rate",
  max_steps: "Max steps", epochs: "Epochs", batch_size: "Batch size", train_split: "Train split", eval_split: "Held-out split",
};

export function RunConfig({ run }: { run: Pick<RunView, "config" | "metrics" | "snapshot_id" | "kind" | "snapshot_sha256"> }) {
  const c = run.config ?? {};
  const keys = (CONFIG_KEYS as readonly string[]).filter((k) => k in c && (run.kind === "train" || !["method", "rank", "alpha", "learning_rate", "max_steps", "epochs", "batch_size", "train_split"].includes(k)));
  const rest = Object.keys(c).filter((k) => !keys.includes(k)).sort();
  const h = headline(run.metrics?.table);
  return (
    <section className="card" aria-labelledby="cfg-h">
      <h2 id="cfg-h">Configuration</h2>
      <dl className="config-list" data-testid="run-config">
        {keys.map((k) => (
          <Fragment key={k}><dt>{NAMES[k] ?? k}</dt>
            <dd title={k === "base_model" ? String(c[k]) : undefined}>{k === "base_model" ? shortModel(c[k]) : formatValue(c[k])}</dd></Fragment>
        ))}
        <dt>Snapshot</dt><dd>{run.snapshot_id != null ? `#${run.snapshot_id}` : "—"}{run.snapshot_sha256 ? ` · ${run.snapshot_sha256.slice(0, 12)}` : ""}</dd>
        {h && <><dt>Headline</dt><dd data-testid="run-headline">{h.metric} {fmt(h.pretrained)} → {fmt(h.finetuned)}</dd></>}
      </dl>
      <details><summary>All {rest.length} other settings</summary>
        <dl className="config-list">{rest.map((k) => <Fragment key={k}><dt>{k}</dt><dd>{formatValue(c[k])}</dd></Fragment>)}</dl>
      </details>
    </section>
  );
}
