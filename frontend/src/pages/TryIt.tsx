// Try it: pick a project image (or upload one) and a prompt; the run's base model and its adapter
// answer side by side, boxes drawn (a small job on the worker queue: POST /api/runs/{id}/try).
import { useEffect, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import type { GalleryBox, ImageItem } from "../api/client";
import { AuthImage } from "../components/AuthImage";
import { BoxOverlay } from "../components/BoxOverlay";
import { ErrorText } from "../components/ErrorText";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { useRun } from "../components/useRun";
import { shapes } from "../lib/gallery";
import { api } from "../session";

interface Answer { text: string; boxes: GalleryBox[]; seconds: number }
interface TryJob { id: string; state: "queued" | "running" | "succeeded" | "failed"; width: number; height: number;
  base: Answer | null; adapter: Answer | null; error: string | null; prompt_used?: string }

export default function TryIt() {
  const pid = Number(useParams().pid);
  const rid = Number(useParams().rid);
  const { project } = useProject(pid);
  const { run } = useRun(rid);
  const [images, setImages] = useState<ImageItem[]>([]);
  const [imageId, setImageId] = useState<number | "">("");
  const [file, setFile] = useState<File | null>(null);
  const [fileUrl, setFileUrl] = useState<string | null>(null);
  const [mode, setMode] = useState<"detect" | "ask">("detect");
  const [prompt, setPrompt] = useState("");
  const [job, setJob] = useState<TryJob | null>(null);
  const [error, setError] = useState<unknown>(null);
  const split = String(run?.config?.eval_split ?? "test");

  useEffect(() => {
    api.listImages(pid, { split, limit: 100 }).then((p) => {
      setImages(p.items);
      setImageId((cur) => (cur === "" && p.items.length ? p.items[0].id : cur));
    }, setError);
  }, [pid, split]);
  useEffect(() => {
    if (!file) { setFileUrl(null); return; }
    const u = URL.createObjectURL(file);
    setFileUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [file]);
  // follow the job until it ends
  useEffect(() => {
    if (!job || job.state === "succeeded" || job.state === "failed") return;
    const t = window.setTimeout(() => api.request<TryJob>("GET", `/api/tryit/${job.id}`).then(setJob, setError), 1000);
    return () => clearTimeout(t);
  }, [job]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setJob(null);
    const form = new FormData();
    form.append("mode", mode);
    form.append("prompt", prompt);
    if (file) form.append("file", file);
    else if (imageId !== "") form.append("image_id", String(imageId));
    try { setJob(await api.request<TryJob>("POST", `/api/runs/${rid}/try`, { form })); } catch (err) { setError(err); }
  }

  const colors = new Map((project?.labels ?? []).map((l) => [l.name, l.color]));
  const colorOf = (n: string) => colors.get(n) ?? "#ffcc00";
  const busy = job != null && (job.state === "queued" || job.state === "running");
  const side = (title: string, a: Answer | null) => (
    <figure className="panel" aria-label={`${title} answer`} data-testid={`try-${title.toLowerCase().split(" ")[0]}`}>
      <figcaption><b>{title}</b>{a && ` · ${a.boxes.length} boxes · ${a.seconds} s`}</figcaption>
      <div className="panel-image">
        {fileUrl ? <img src={fileUrl} alt={`upload (${title})`} /> : imageId !== "" && <AuthImage imageId={imageId} thumbnail={false} alt={`image ${imageId} (${title})`} />}
        {a && job && <BoxOverlay width={job.width} height={job.height} boxes={shapes(a.boxes, colorOf)} labels={[]} />}
      </div>
      <p className="raw small">{a ? (a.text ? <code>{a.text}</code> : <i>(answered nothing)</i>) : busy ? "thinking…" : ""}</p>
    </figure>
  );

  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      <p className="muted"><Link to={`/projects/${pid}/runs/${rid}`}>← Run {rid}</Link></p>
      <h1>Try run {rid}</h1>
      {run && run.status !== "succeeded" && <p className="warn">This run is {run.status}: only a succeeded train run has an adapter to try.</p>}
      <form className="card" onSubmit={submit} aria-label="Try it">
        <div className="row">
          <label>Image of the {split} split
            <select value={imageId} onChange={(e) => { setImageId(Number(e.target.value)); setFile(null); }} disabled={!!file}>
              {images.map((im) => <option key={im.id} value={im.id}>{im.file_name}</option>)}
            </select>
          </label>
          <label>or upload one <input type="file" accept="image/*" onChange={(e) => setFile(e.target.files?.[0] ?? null)} /></label>
          <label>Task
            <select value={mode} onChange={(e) => setMode(e.target.value as "detect" | "ask")}>
              <option value="detect">detect the project's labels</option><option value="ask">ask a question</option>
            </select>
          </label>
          {mode === "ask" && <label>Question <input className="wide" value={prompt} onChange={(e) => setPrompt(e.target.value)} placeholder="How many karts are in the image?" /></label>}
        </div>
        <button type="submit" className="primary" disabled={busy || (!file && imageId === "")}>{busy ? `Answering (${job?.state})…` : "Ask both models"}</button>
        <ErrorText error={error} />
      </form>
      {job?.state === "failed" && <p className="error" role="alert">Failed: {job.error}</p>}
      {job && (
        <div className="panels" aria-live="polite">
          {side("Base model", job.base)}
          {side("Fine-tuned (adapter)", job.adapter)}
        </div>
      )}
      {job?.prompt_used && <p className="muted small">Prompt sent: <code>{job.prompt_used}</code></p>}
    </div>
  );
}
