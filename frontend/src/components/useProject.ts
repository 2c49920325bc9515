import { useCallback, useEffect, useState } from "react";
import type { ProjectDetail } from "../api/client";
import { api } from "../session";

/** The project (labels, counts) with a reload for after edits. */
export function useProject(pid: number) {
  const [project, setProject] = useState<ProjectDetail | null>(null);
  const [error, setError] = useState<unknown>(null);
  const reload = useCallback(() => api.getProject(pid).then(setProject, setError), [pid]);
  useEffect(() => {
    reload();
  }, [reload]);
  return { project, error, reload };
}
