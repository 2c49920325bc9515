// AWAITING THE RUNS API (issue #5). Written against its contract (POST /api/projects/{pid}/runs
// {kind, config}; GET /api/runs/{id}; POST /api/runs/{id}/cancel); not yet tested end to end, and
// the config keys below must be aligned with the API when it lands. No fake data: without the API
// the page says so.
import { useState, type FormEvent } from "react";
import { useNavigate, useParams } from "react-router";
import { ApiError } from "../api/client";
import { ErrorText } from "../components/ErrorText";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { api } from "../session";

const FAMILIES: [string, string][] = [
  ["paligemma", "PaliGemma 2"], ["qwen2_vl", "Qwen2-VL"], ["qwen2_5_vl", "Qwen2.5-VL"], ["smolvlm", "SmolVLM"],
];

export default function Runs() {
  const pid = Number(useParams().pid);
  const { project } = useProject(pid);
  const navigate = useNavigate();
  const [kind, setKind] = useState<"train" | "evaluate" | "predict">("train");
  const [cfg, setCfg] = useState({
    family: "paligemma", base_model: "", method: "lora", lora_r: 8, lora_alpha: 16, lora_dropout: 0.05,
    learning_rate: 2e-4, max_steps: 200, batch_size: 4, train_split: "train", eval_split: "val", task_mix: "detection",
  });
  const [error, setError] = useState<unknown>(null);
  const [missing, setMissing] = useState(false);
  const set = (k: keyof typeof cfg, v: string | number) => setCfg({ ...cfg, [k]: v });
  const num = (k: keyof typeof cfg) => (e: { target: { value: string } }) => set(k, Number(e.target.value));

  async function launch(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const run = await api.request<{ id: number }>("POST", `/api/projects/${pid}/runs`, {
        json: { kind, config: { ...cfg, task_mix: cfg.task_mix.split(",").map((t) => t.trim()).filter(Boolean) } },
      });
      navigate(`/projects/${pid}/runs/${run.id}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && /Not Found/i.test(err.detail)) setMissing(true);
      else setError(err);
    }
  }

  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      <h1>Runs</h1>
      {missing && <p className="warn" role="alert">This server has no runs API yet (POST /api/projects/{pid}/runs answered 404).</p>}
      <form className="card" onSubmit={launch} aria-labelledby="launch-h">
        <h2 id="launch-h">Launch a run</h2>
        <div className="row">
          <label>Kind
            <select value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
              <option value="train">train (LoRA / QLoRA fine-tuning)</option><option value="evaluate">evaluate</option><option value="predict">predict</option>
            </select>
          </label>
          <label>Model family
            <select value={cfg.family} onChange={(e) => set("family", e.target.value)}>{FAMILIES.map(([v, t]) => <option key={v} value={v}>{t}</option>)}</select>
          </label>
          <label>Base model (hub id or local folder; empty = the family's default)
            <input value={cfg.base_model} onChange={(e) => set("base_model", e.target.value)} placeholder="google/paligemma2-3b-pt-224" />
          </label>
        </div>
        <div className="row">
          <label>Method
            <select value={cfg.method} onChange={(e) => set("method", e.target.value)}>
              <option value="lora">LoRA (full-precision base)</option><option value="qlora4">QLoRA 4-bit nf4 (less memory, slower)</option>
              <option value="qlora8">QLoRA 8-bit</option>
            </select>
          </label>
          <label>LoRA rank r (capacity; 8–16 is typical) <input type="number" min={1} className="short" value={cfg.lora_r} onChange={num("lora_r")} /></label>
          <label>LoRA alpha (scale; often 2×r) <input type="number" min={1} className="short" value={cfg.lora_alpha} onChange={num("lora_alpha")} /></label>
          <label>LoRA dropout <input type="number" step={0.01} min={0} max={1} className="short" value={cfg.lora_dropout} onChange={num("lora_dropout")} /></label>
        </div>
        <div className="row">
          <label>Learning rate (peak, with warm-up and decay) <input type="number" step="any" className="short" value={cfg.learning_rate} onChange={num("learning_rate")} /></label>
          <label>Steps <input type="number" min={1} className="short" value={cfg.max_steps} onChange={num("max_steps")} /></label>
          <label>Batch size <input type="number" min={1} className="short" value={cfg.batch_size} onChange={num("batch_size")} /></label>
          <label>Task mix (comma-separated: detection, qa families) <input value={cfg.task_mix} onChange={(e) => set("task_mix", e.target.value)} /></label>
          <label>Train split <input className="short" value={cfg.train_split} onChange={(e) => set("train_split", e.target.value)} /></label>
          <label>Held-out split <input className="short" value={cfg.eval_split} onChange={(e) => set("eval_split", e.target.value)} /></label>
        </div>
        <button type="submit" className="primary">Launch</button>
        <ErrorText error={error} />
      </form>
    </div>
  );
}
