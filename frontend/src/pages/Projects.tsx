import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import type { LabelCreate, Project } from "../api/client";
import { ErrorText } from "../components/ErrorText";
import { PALETTE } from "../components/palette";
import { api } from "../session";

export default function Projects() {
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api.listProjects().then(setProjects, setError);
  }, []);

  return (
    <div className="pad">
      <h1>Projects</h1>
      <ErrorText error={error} />
      {projects && projects.length === 0 && <p className="muted">No projects yet: create one below, then import images (Dataset → Import), split them, generate questions and launch a run. A fresh <code>studio up</code> opens with a ready demo project instead.</p>}
      <ul className="project-list">
        {projects?.map((p) => (
          <li key={p.id} className="card">
            <Link to={`/projects/${p.id}`}><strong>{p.name}</strong></Link>
            <span className="muted"> · {p.task_kinds.join(", ")} · your role: {p.role}</span>
            {p.description && <p>{p.description}</p>}
          </li>
        ))}
      </ul>
      <CreateProject />
    </div>
  );
}

function CreateProject() {
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [labels, setLabels] = useState<LabelCreate[]>([{ name: "", color: PALETTE[0], hotkey: "1" }]);
  const [error, setError] = useState<unknown>(null);

  const setLabel = (i: number, patch: Partial<LabelCreate>) =>
    setLabels(labels.map((l, j) => (j === i ? { ...l, ...patch } : l)));

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const p = await api.createProject({
        name, description, task_kinds: ["detection"],
        labels: labels.filter((l) => l.name.trim()).map((l) => ({ ...l, hotkey: l.hotkey || null })),
      });
      navigate(`/projects/${p.id}`);
    } catch (err) {
      setError(err);
    }
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby="new-project">
      <h2 id="new-project">New project</h2>
      <label>Name <input value={name} onChange={(e) => setName(e.target.value)} required /></label>
      <label>Description <input value={description} onChange={(e) => setDescription(e.target.value)} /></label>
      <fieldset>
        <legend>Labels</legend>
        {labels.map((l, i) => (
          <div className="row" key={i}>
            <label>Label {i + 1} name <input value={l.name} onChange={(e) => setLabel(i, { name: e.target.value })} /></label>
            <label>Colour <input type="color" value={l.color} onChange={(e) => setLabel(i, { color: e.target.value })} /></label>
            <label>Hotkey <input className="key" maxLength={1} value={l.hotkey ?? ""} onChange={(e) => setLabel(i, { hotkey: e.target.value })} /></label>
            <button type="button" onClick={() => setLabels(labels.filter((_, j) => j !== i))} aria-label={`Remove label ${i + 1}`}>✕</button>
          </div>
        ))}
        <button type="button" onClick={() => setLabels([...labels, {
          name: "", color: PALETTE[labels.length % PALETTE.length], hotkey: labels.length < 9 ? String(labels.length + 1) : "",
        }])}>Add label</button>
      </fieldset>
      <button type="submit" className="primary">Create project</button>
      <ErrorText error={error} />
    </form>
  );
}
