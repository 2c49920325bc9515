// The project's runs (status, kind, progress, created) and the launcher: POST /api/projects/{pid}/runs
// with a config of backend.runs.RunConfig's keys. A 422 names the field; it is shown next to it.
import { useCallback, useEffect, useId, useState, type FormEvent, type ReactNode } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { ApiError, FINISHED, QA_FAMILIES, type CatalogModel, type RunSummary } from "../api/client";
import { ErrorText, errText } from "../components/ErrorText";
import { DemoBanner } from "../components/DemoBanner";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { buildRequest, DEFAULT_FORM, errorField, estimateText, FAMILIES, pickedForm, suggestedText, type Estimate, type LaunchForm } from "../lib/launch";
import { fmt, percent } from "../lib/runs";
import { configLine, headline } from "../lib/compare";
import { clip, configToForm, saveForm, savedForm } from "../lib/relaunch";
import { runUseText, STATUS_FILTERS, type StatusFilter } from "../lib/status";
import { useStatusCounts } from "../components/useStatusCounts";
import { api } from "../session";

export default function Runs() {
  const pid = Number(useParams().pid);
  const { project } = useProject(pid);
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => api.listRuns(pid).then((r) => { setRuns(r.items); return r.items; }, (e) => { setError(e); return null; }), [pid]);
  // while a run is active the list refreshes itself
  useEffect(() => {
    let timer = 0, stop = false;
    const tick = () => load().then((items) => {
      if (!stop && items?.some((r) => !FINISHED.includes(r.status))) timer = window.setTimeout(tick, 3000);
    });
    tick();
    return () => { stop = true; clearTimeout(timer); };
  }, [load]);

  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      {project && <DemoBanner project={project} />}
      <h1>Runs</h1>
      <ErrorText error={error} />
      <RunList pid={pid} runs={runs} />
      <LaunchFormCard pid={pid} adapters={(runs ?? []).filter((r) => r.kind === "train" && r.status === "succeeded")} />
    </div>
  );
}

function RunList({ pid, runs }: { pid: number; runs: RunSummary[] | null }) {
  const [picked, setPicked] = useState<number[]>([]);
  if (runs === null) return <p className="muted">Loading runs…</p>;
  if (!runs.length) return <p className="muted">No runs yet: launch one below (pick a model from the catalogue; the demo model trains in about a minute on a CPU).</p>;
  const toggle = (id: number, on: boolean) => setPicked((p) => (on ? [...p, id] : p.filter((x) => x !== id)));
  return (
    <>
      <table aria-label="Runs" className="runs-table">
        <thead><tr><th>Compare</th><th>Run</th><th>Kind</th><th>Status</th><th>Progress</th><th>Configuration</th><th>Result</th><th>Created</th></tr></thead>
        <tbody>
          {runs.map((r) => {
            const row = headline(r.metrics?.table);
            return (
              <tr key={r.id} data-run-id={r.id}>
                <td><input type="checkbox" aria-label={`Compare run ${r.id}`} checked={picked.includes(r.id)} onChange={(e) => toggle(r.id, e.target.checked)} /></td>
                <td><Link to={`/projects/${pid}/runs/${r.id}`}>Run {r.id}</Link></td>
                <td>{r.kind}</td>
                <td><span className={`status st-${r.status}`}>{r.status}</span></td>
                <td><progress max={100} value={percent(r.progress)} aria-label={`Run ${r.id} progress`} /> {percent(r.progress)} %</td>
                <td className="small">{configLine(r.config)}</td>
                <td className="muted" title={r.error ?? undefined}>{row ? `${row.metric} ${fmt(row.pretrained)} → ${fmt(row.finetuned)}` : r.error ? clip(r.error, 90) : ""}</td>
                <td className="muted">{r.created_at ? new Date(r.created_at).toLocaleString() : "—"}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p className="row">
        {picked.length >= 2
          ? <Link className="button" to={`/projects/${pid}/compare?runs=${[...picked].sort((a, b) => a - b).join(",")}`}>Compare {picked.length} runs</Link>
          : <span className="muted small">Tick two or more runs to compare their metrics, loss curves and configurations.</span>}
      </p>
    </>
  );
}

/** One labelled control with help text and the server's message about it. */
function Field({ label, help, error, children }: {
  label: string; help?: string; error?: string;
  children: (p: { id: string; "aria-describedby"?: string; "aria-invalid"?: boolean }) => ReactNode;
}) {
  const id = useId();
  const desc = [help && `${id}-help`, error && `${id}-err`].filter(Boolean).join(" ") || undefined;
  return (
    <div className={`field${error ? " invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, "aria-describedby": desc, "aria-invalid": error ? true : undefined })}
      {help && <small id={`${id}-help`} className="muted">{help}</small>}
      {error && <small id={`${id}-err`} role="alert" className="error">{error}</small>}
    </div>
  );
}

function LaunchFormCard({ pid, adapters }: { pid: number; adapters: RunSummary[] }) {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const from = Number(params.get("from")) || null;
  const [f, setF] = useState<LaunchForm>(() => savedForm(pid) ?? DEFAULT_FORM);
  const [note, setNote] = useState("");
  const [models, setModels] = useState<CatalogModel[]>([]);
  useEffect(() => { api.listModels().then((m) => setModels(m.items), () => setModels([])); }, []);
  // "Launch again with changes": the form filled from that run
  useEffect(() => {
    if (!from) return;
    api.getRun(from).then((r) => { setF(configToForm(r.kind, r.config)); setNote(`Filled from run ${from}: change what you want and launch.`); },
      (e) => setError(e));
  }, [from]);
  useEffect(() => saveForm(pid, f), [pid, f]); // kept after a launch and a 422
  const pickModel = (id: string) => {
    const m = models.find((x) => x.id === id);
    if (m) setF((x) => pickedForm(x, m));
  };
  const picked = models.find((m) => m.id === f.base_model);
  const pickedSet = picked ? suggestedText(picked) : "";
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof LaunchForm>(k: K, v: LaunchForm[K]) => setF((x) => ({ ...x, [k]: v }));
  const text = (k: keyof LaunchForm) => ({ value: String(f[k]), onChange: (e: { target: { value: string } }) => set(k, e.target.value as never) });
  const num = (k: keyof LaunchForm) => ({ type: "number", value: String(f[k]), onChange: (e: { target: { value: string } }) => set(k, Number(e.target.value) as never) });
  const check = (k: keyof LaunchForm) => ({ type: "checkbox", checked: Boolean(f[k]), onChange: (e: { target: { checked: boolean } }) => set(k, e.target.checked as never) });
  const train = f.kind === "train";
  const counts = useStatusCounts(pid);
  const useText = counts && runUseText(counts, f.train_status as StatusFilter, train ? [f.train_split, f.eval_split] : [f.eval_split]);
  const families = f.qa_families ?? QA_FAMILIES;
  const estimate = useEstimate(pid, f);
  const toggleFamily = (name: string, on: boolean) => {
    const next = on ? [...families, name] : families.filter((x) => x !== name);
    set("qa_families", QA_FAMILIES.every((x) => next.includes(x)) ? null : next);
  };

  async function launch(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setErrors({});
    setBusy(true);
    try {
      const run = await api.createRun(pid, buildRequest(f));
      navigate(`/projects/${pid}/runs/${run.id}`);
    } catch (err) {
      const field = err instanceof ApiError && err.status === 422 ? errorField(err.detail) : null;
      if (field) setErrors({ [field]: errText(err) });
      else setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card launch" onSubmit={launch} aria-labelledby="launch-h" noValidate>
      <h2 id="launch-h">Launch a run</h2>
      {note && <p role="status" className="ok">{note}</p>}
      <fieldset>
        <legend>Model</legend>
        <div className="row">
          <Field label="Model from the catalogue" help={picked ? (picked.note ?? `${picked.source} model`) + (pickedSet ? `; set from its pre-training: ${pickedSet}` : "") : "or type a local folder / hub id in Base model"}>
            {(p) => (
              <select {...p} value={picked ? picked.id : ""} onChange={(e) => pickModel(e.target.value)}>
                <option value="">other (type it in Base model)</option>
                {models.map((m) => (
                  <option key={m.id} value={m.id} disabled={m.source === "demo" && m.status !== "ready"}>
                    {m.source === "hub" ? `${m.name} (${m.status === "ready" ? "cached" : "needs the model hub or a local copy"})`
                      : m.source === "demo" ? `${m.name}${m.status === "ready" ? "" : ` (${m.note})`}` : `${m.name} (${m.family ?? "?"})`}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Kind" error={errors.kind} help="train: fine-tune, evaluating the base before and the adapter after; evaluate: score a model; predict: boxes for unlabeled images">
            {(p) => <select {...p} {...text("kind")}><option value="train">train (LoRA / QLoRA)</option><option value="evaluate">evaluate</option><option value="predict">predict</option></select>}
          </Field>
          <Field label="Model family" error={errors.family} help="must match the model's config.json">
            {(p) => <select {...p} {...text("family")}>{FAMILIES.map(([v, t]) => <option key={v} value={v}>{t}</option>)}</select>}
          </Field>
          <Field label="Base model" error={errors.base_model} help="a hub id (org/name) or a local save_pretrained folder on the worker">
            {(p) => <input {...p} {...text("base_model")} className="wide" placeholder="empty: pick a model from the catalogue" />}
          </Field>
          {!train && (
            <Field label="Adapter (train run)" error={errors.adapter_run_id} help="empty: the base model alone">
              {(p) => <select {...p} {...text("adapter_run_id")}><option value="">none (base model)</option>
                {adapters.map((r) => <option key={r.id} value={r.id}>run {r.id}</option>)}</select>}
            </Field>
          )}
        </div>
      </fieldset>

      {train && (
        <>
          <fieldset>
            <legend>LoRA / QLoRA</legend>
            <div className="row">
              <Field label="Method" error={errors.method} help="QLoRA quantises the frozen base: less memory, slower steps">
                {(p) => <select {...p} {...text("method")}><option value="lora">LoRA</option><option value="qlora">QLoRA</option></select>}
              </Field>
              <Field label="Rank r" error={errors.rank} help="adapter capacity; 8–16 is typical">{(p) => <input {...p} {...num("rank")} min={1} className="short" />}</Field>
              <Field label="Alpha" error={errors.alpha} help="scale = alpha / r; often 2 × r">{(p) => <input {...p} {...num("alpha")} min={0} className="short" />}</Field>
              <Field label="Dropout" error={errors.dropout} help="on the adapter's input, 0–0.1">{(p) => <input {...p} {...num("dropout")} step={0.01} min={0} max={0.99} className="short" />}</Field>
              <Field label="Target modules" error={errors.target_modules} help="all-linear, or names: q_proj, v_proj">{(p) => <input {...p} {...text("target_modules")} />}</Field>
            </div>
            {f.method === "qlora" && (
              <div className="row">
                <Field label="Bits" error={errors.bits} help="4 (nf4/fp4) or 8">{(p) => <select {...p} value={f.bits} onChange={(e) => set("bits", Number(e.target.value))}><option value={4}>4</option><option value={8}>8</option></select>}</Field>
                <Field label="Quant type" error={errors.quant_type} help="nf4 suits normally distributed weights">{(p) => <select {...p} {...text("quant_type")}><option>nf4</option><option>fp4</option></select>}</Field>
              </div>
            )}
            <div className="row">
              <Field label="Compute dtype" error={errors.compute_dtype} help="auto: bfloat16 on GPUs that have it, else float16; float32 on CPU">{(p) => <select {...p} {...text("compute_dtype")}><option>auto</option><option>bfloat16</option><option>float16</option><option>float32</option></select>}</Field>
              <Field label="Gradient checkpointing" error={errors.gradient_checkpointing} help="recompute activations: far less memory, ~30 % slower; auto = on for GPUs">{(p) => <select {...p} {...text("gradient_checkpointing")}><option>auto</option><option>on</option><option>off</option></select>}</Field>
              <Field label="Augment" error={errors.augment} help="random views of training samples: mirrors; crops move objects that always sit in one place">{(p) => <select {...p} {...text("augment")}><option value="none">none</option><option value="flip">mirror</option><option value="crop_flip">crop + mirror</option></select>}</Field>
              <Field label="Object order" error={errors.object_order} help="order of the boxes in a detection target: shuffled every epoch, or largest first (what the demo model was pre-trained with)">{(p) => <select {...p} {...text("object_order")}><option value="shuffle">shuffle</option><option value="largest_first">largest first</option><option value="as_given">as given</option></select>}</Field>
              <Field label="Soft box targets (PaliGemma)" error={errors.loc_sigma} help="σ in location bins: a coordinate's target spreads over its neighbours, so 3 bins off is nearly right; 0 = plain cross-entropy, the demo uses 6">{(p) => <input {...p} {...num("loc_sigma")} step="any" min={0} max={1024} className="short" />}</Field>
              <Field label="Max pixels (Qwen)" error={errors.max_pixels} help="cap on the image size the Qwen models see; empty: the processor's (12.8 MP)">{(p) => <input {...p} {...text("max_pixels")} type="number" min={3136} />}</Field>
            </div>
            <div className="row" role="group" aria-label="Freeze">
              <label className="inline"><input {...check("freeze_vision")} /> Freeze vision tower</label>
              <label className="inline"><input {...check("freeze_projector")} /> Freeze projector</label>
              <label className="inline"><input {...check("freeze_language")} /> Freeze language model</label>
              <small className="muted">frozen parts get no LoRA and keep their weights</small>
              {errors.freeze && <small role="alert" className="error">{errors.freeze}</small>}
            </div>
          </fieldset>
          <fieldset>
            <legend>Optimisation</legend>
            <div className="row">
              <Field label="Learning rate" error={errors.learning_rate} help="peak, after warm-up; 1e-4–5e-4 for LoRA">{(p) => <input {...p} {...num("learning_rate")} step="any" min={0} className="short" />}</Field>
              <Field label="Epochs" error={errors.epochs} help="passes over the training split">{(p) => <input {...p} {...num("epochs")} step="any" min={0} className="short" />}</Field>
              <Field label="Max steps" error={errors.max_steps} help="empty: by epochs">{(p) => <input {...p} {...text("max_steps")} type="number" min={1} className="short" />}</Field>
              <Field label="Batch size" error={errors.batch_size} help="samples per step per device">{(p) => <input {...p} {...num("batch_size")} min={1} className="short" />}</Field>
              <Field label="Grad accumulation" error={errors.grad_accum} help="effective batch = batch × this">{(p) => <input {...p} {...num("grad_accum")} min={1} className="short" />}</Field>
              <Field label="Scheduler" error={errors.scheduler} help="learning-rate decay after warm-up">{(p) => <select {...p} {...text("scheduler")}><option>cosine</option><option>linear</option><option>constant</option></select>}</Field>
              <Field label="Warm-up ratio" error={errors.warmup_ratio} help="share of steps ramping up, 0–0.1">{(p) => <input {...p} {...num("warmup_ratio")} step={0.01} min={0} max={0.99} className="short" />}</Field>
            </div>
          </fieldset>
          <fieldset>
            <legend>Task mix</legend>
            <div className="row">
              <Field label="Detection weight" error={errors.tasks} help="sampling weight of box targets">{(p) => <input {...p} {...num("detect_weight")} step="any" min={0} className="short" />}</Field>
              <Field label="VQA weight" help="sampling weight of question/answer pairs; 0 = detection only">{(p) => <input {...p} {...num("vqa_weight")} step="any" min={0} className="short" />}</Field>
              <Field label="Question family weights" help="a family's own weight instead of the VQA weight, e.g. spatial 4, counting 0.5 (a family with few questions drawn more often)">{(p) => <input {...p} {...text("family_weights")} placeholder="spatial 4" />}</Field>
            </div>
          </fieldset>
        </>
      )}

      {f.kind !== "predict" ? (
        <fieldset>
          <legend>Data</legend>
          <div className="row" role="group" aria-label="QA families">
            <span className="muted small">QA families</span>
            {QA_FAMILIES.map((name) => (
              <label key={name} className="inline"><input type="checkbox" checked={families.includes(name)} onChange={(e) => toggleFamily(name, e.target.checked)} /> {name}</label>
            ))}
            {errors.qa_families && <small role="alert" className="error">{errors.qa_families}</small>}
          </div>
          <div className="row">
            {train && <Field label="Train split" error={errors.train_split}>{(p) => <input {...p} {...text("train_split")} className="short" />}</Field>}
            <Field label="Held-out split" error={errors.eval_split} help="evaluated before and after">{(p) => <input {...p} {...text("eval_split")} className="short" />}</Field>
            <Field label="Images" error={errors.image_status} help={useText ?? "by review status"}>
              {(p) => <select {...p} {...text("train_status")}>{STATUS_FILTERS.map(([v, t]) => <option key={v} value={v}>{t}</option>)}</select>}
            </Field>
            <Field label="Leakage key" error={errors.leak_key} help="image meta key no group may straddle splits by (race_id, track)">{(p) => <input {...p} {...text("leak_key")} className="short" />}</Field>
            <Field label="Max eval images" error={errors.max_eval_images} help="empty: all">{(p) => <input {...p} {...text("max_eval_images")} type="number" min={1} className="short" />}</Field>
            <Field label="Max new tokens" error={errors.max_new_tokens} help="auto: room for every held-out image's objects + 2, measured with the model's tokenizer">{(p) => <input {...p} {...text("max_new_tokens")} className="short" />}</Field>
          </div>
        </fieldset>
      ) : (
        <Field label="Images with status" error={errors.image_status} help="predict boxes for these images">
          {(p) => <select {...p} {...text("image_status")}><option>unlabeled</option><option>in_review</option><option>accepted</option><option>rejected</option></select>}
        </Field>
      )}
      {(train || f.adapter_run_id !== "") && (
        <div className="row">
          <label className="inline"><input {...check("pool_base_boxes")} /> Pool the base's boxes with the adapter's</label>
          <small className="muted">the adapter's boxes and the base model's on the same images, fused into one per object (IoU 0.5):
            keeps objects a short fine-tune forgot, at the base's precision; evaluate / predict runs decode once more; the evaluation shows
            the adapter alone beside it</small>
        </div>
      )}
      {train && estimate && (
        <p role="status" className={estimate.fits === false ? "error" : "muted"} data-testid="estimate">
          {"pending" in estimate ? "estimating the peak GPU memory…" : "error" in estimate && estimate.error !== undefined ? `memory estimate: ${estimate.error}` : estimateText(estimate as Estimate)}
        </p>
      )}
      <button type="submit" className="primary" disabled={busy}>{busy ? "Launching…" : "Launch"}</button>
      <ErrorText error={error} />
    </form>
  );
}

/** The run's pre-flight memory estimate (POST runs with dry_run), refreshed as the form changes. */
type EstimateState = (Estimate & { error?: undefined }) | { error: string; fits?: undefined; pending?: true };

function useEstimate(pid: number, f: LaunchForm): EstimateState | null {
  const [est, setEst] = useState<EstimateState | null>(null);
  const key = JSON.stringify(buildRequest(f));
  useEffect(() => {
    if (f.kind !== "train" || !f.base_model.trim()) { setEst(null); return; }
    let live = true;
    const t = setTimeout(() => {
      setEst((x) => x ?? { error: "", pending: true });
      // a dry run answers with the estimate, not a run
      api.createRun(pid, { ...buildRequest(f), dry_run: true }).then(
        (r) => live && setEst(r as unknown as Estimate),
        (e) => live && setEst({ error: errText(e) }));
    }, 400);
    return () => { live = false; clearTimeout(t); };
  }, [pid, key]); // eslint-disable-line react-hooks/exhaustive-deps
  return est;
}
