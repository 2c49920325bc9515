import { NavLink } from "react-router";
import type { ProjectDetail } from "../api/client";

/** The project's tabs. */
export function ProjectNav({ project }: { project: Pick<ProjectDetail, "id" | "name"> }) {
  const base = `/projects/${project.id}`;
  return (
    <nav className="tabs" aria-label="Project">
      <strong className="pname">{project.name}</strong>
      <NavLink to={base} end>Dataset</NavLink>
      <NavLink to={`${base}/splits`}>Splits</NavLink>
      <NavLink to={`${base}/qa`}>QA review</NavLink>
      <NavLink to={`${base}/runs`}>Runs</NavLink>
      <NavLink to={`${base}/settings`}>Settings</NavLink>
    </nav>
  );
}
