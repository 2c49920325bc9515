// On the demo project's pages: what is happening (the demo model being built, with its progress)
// and what to try next. Refreshes itself while the model builds.
import { useEffect, useState } from "react";
import { Link } from "react-router";
import type { CatalogModel } from "../api/client";
import { formatEta, percent } from "../lib/runs";
import { api } from "../session";

export function DemoBanner({ project }: { project: { id: number; name: string } }) {
  const [demo, setDemo] = useState<CatalogModel | null>(null);
  const isDemo = project.name.startsWith("Demo:");
  useEffect(() => {
    if (!isDemo) return;
    let timer = 0, stop = false;
    const tick = () => api.listModels().then((r) => {
      const d = r.items.find((m) => m.source === "demo") ?? null;
      if (stop) return;
      setDemo(d);
      if (d?.status === "building") timer = window.setTimeout(tick, 3000);
    }, () => {});
    tick();
    return () => { stop = true; clearTimeout(timer); };
  }, [isDemo]);
  if (!isDemo || !demo) return null;
  const job = demo.job;
  const base = `/projects/${project.id}`;
  return (
    <aside className="card banner" aria-label="Demo: what is happening" data-testid="demo-banner">
      {demo.status === "building" ? (
        <p><b>The demo model is being prepared</b> on the worker ({percent(job?.progress)} %{job?.eta_seconds ? `, ready in about ${formatEta(job.eta_seconds)}` : ""};
          {" "}<Link to="/models">Models</Link> shows its log). Meanwhile: browse the real SuperTuxKart frames and their engine boxes here,
          and the generated questions in <Link to={`${base}/qa`}>QA review</Link>.</p>
      ) : demo.status === "ready" ? (
        <p><b>The demo model is ready.</b> Next: <Link to={`${base}/runs`}>Runs</Link> → pick “{demo.name}” in the catalogue and launch a
          short train run (e.g. 40 steps); then launch again with one change and compare the two.</p>
      ) : (
        <p><b>The demo model is not built</b> ({demo.note}). Build it on the <Link to="/models">Models</Link> page; meanwhile browse the frames and questions.</p>
      )}
    </aside>
  );
}
