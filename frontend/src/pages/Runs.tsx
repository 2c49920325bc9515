import { useParams } from "react-router";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";

// Awaiting the runs API (issue #5): the launcher, run page, evaluation table and gallery are built
// when POST /api/projects/{pid}/runs and GET /api/runs/{id} exist. No fake data here.
export default function Runs() {
  const pid = Number(useParams().pid);
  const { project } = useProject(pid);
  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      <h1>Runs</h1>
      <p className="warn">Training, evaluation and the comparison gallery arrive with the runs API. Until then use the CLI: <code>studio train</code>, <code>studio evaluate</code>.</p>
    </div>
  );
}
