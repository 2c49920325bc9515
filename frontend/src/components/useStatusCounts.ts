import { useEffect, useState } from "react";
import type { StatusCount } from "../lib/status";
import { api } from "../session";

/** Images per (split, status) of a project; `reload` bumps it after a change. null while loading. */
export function useStatusCounts(pid: number, reload: string | number = 0): StatusCount[] | null {
  const [counts, setCounts] = useState<StatusCount[] | null>(null);
  useEffect(() => {
    let live = true;
    api.request<StatusCount[]>("GET", `/api/projects/${pid}/images/counts`).then((c) => live && setCounts(c), () => {});
    return () => { live = false; };
  }, [pid, reload]);
  return counts;
}
