import { useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError, uploadWithProgress, type ImportReport, type UploadResult } from "../api/client";
import { api } from "../session";
import { detectFormat, suggestion, type FileHint } from "../lib/importFormat";

/** Names (relative paths) and, for JSON files, their first KB: what format detection reads. */
async function hints(files: File[]): Promise<FileHint[]> {
  return Promise.all(files.map(async (f) => ({
    name: f.webkitRelativePath || f.name,
    head: /\.json$/i.test(f.name) ? await f.slice(0, 1024).text() : undefined,
  })));
}

const FORMATS: [string, string][] = [
  ["images", "Images only (files or a zip of images)"],
  ["coco", "COCO (annotations JSON + images)"],
  ["yolo", "YOLO (labels/*.txt + images, data.yaml)"],
  ["voc", "Pascal VOC (XML + images)"],
  ["supertuxkart", "SuperTuxKart info.json"],
  ["detjson", "Plain detection JSON"],
  ["hf_parquet", "Hugging Face datasets Parquet (image + objects)"],
  ["labelstudio", "Label Studio JSON export (rectangles)"],
  ["cvat", "CVAT for images 1.1 XML + images"],
  ["msswift", "ms-swift messages JSONL + images"],
  ["llamafactory", "LLaMA-Factory sharegpt JSON + images"],
];

/** Upload files or a zip, with upload progress, then the server's report or its error, readable. */
export function ImportDialog({ pid, onClose, onDone }: { pid: number; onClose: () => void; onDone: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [format, setFormat] = useState("images");
  const [files, setFiles] = useState<File[]>([]);
  const [progress, setProgress] = useState<number | null>(null);
  const [result, setResult] = useState<ImportReport | UploadResult | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [detected, setDetected] = useState<string | null>(null);
  const [suggest, setSuggest] = useState<string | null>(null);
  const [over, setOver] = useState(false);
  const chosen = useRef(false);
  const pick = async (fs: File[]) => {
    setFiles(fs);
    setError(null);
    setSuggest(null);
    setResult(null);
    const d = detectFormat(await hints(fs));
    setDetected(d);
    if (d && !chosen.current) setFormat(d); // a format the user picked wins over the guess
  };

  useEffect(() => {
    ref.current?.showModal();
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setResult(null);
    const form = new FormData();
    // A folder pick keeps relative paths (labels/x.txt), which the format readers need.
    for (const f of files) form.append("files", f, f.webkitRelativePath || f.name);
    const images = format === "images";
    if (!images) form.append("format", format);
    setProgress(0);
    try {
      const r = await uploadWithProgress<ImportReport | UploadResult>(
        `/api/projects/${pid}/${images ? "images" : "imports"}`, api.authHeaders(), form, setProgress);
      setResult(r);
      onDone();
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, String(err), null));
      setSuggest(suggestion(format, await hints(files)));
    } finally {
      setProgress(null);
    }
  }

  return (
    <dialog ref={ref} className="card dialog" aria-labelledby="import-h" onClose={onClose}>
      <form onSubmit={submit}>
        <h2 id="import-h">Import</h2>
        <label>Format
          <select value={format} onChange={(e) => { chosen.current = true; setFormat(e.target.value); }}>
            {FORMATS.map(([v, t]) => <option key={v} value={v}>{t}</option>)}
          </select>
        </label>
        <div className={`drop-zone${over ? " over" : ""}`} data-testid="drop-zone"
          onDragOver={(e) => { e.preventDefault(); setOver(true); }} onDragLeave={() => setOver(false)}
          onDrop={(e) => { e.preventDefault(); setOver(false); void pick([...e.dataTransfer.files]); }}>
          <p>Drop images, annotation files or a zip here, or</p>
          <label>Files (images, annotation files, or one zip)
            <input type="file" multiple onChange={(e) => void pick([...(e.target.files ?? [])])} />
          </label>
        </div>
        {files.length > 0 && <p className="muted">{files.length} file(s), {(files.reduce((s, f) => s + f.size, 0) / 1e6).toFixed(1)} MB
          {detected && <> · looks like <b data-testid="detected">{detected}</b> {detected === format ? "(format set; change it above if not)" : ""}</>}</p>}
        {progress !== null && (
          <p><progress value={progress} max={1} aria-label="Upload progress" /> {progress < 1 ? `${Math.round(progress * 100)}% uploaded` : "processing on the server…"}</p>
        )}
        {error && (
          <div role="alert" className="error">
            <strong>Nothing was imported{error.status ? ` (HTTP ${error.status})` : ""}:</strong>
            <ul>{error.detail.split("; ").map((line, i) => <li key={i}>{line}</li>)}</ul>
            {suggest && <p>These files look like <b>{suggest}</b>. <button type="button" onClick={() => { setFormat(suggest); setSuggest(null); setError(null); }}>
              Use {suggest} instead</button></p>}
          </div>
        )}
        {result && <Report r={result} />}
        <div className="row">
          <button type="submit" className="primary" disabled={!files.length || progress !== null}>Upload</button>
          <button type="button" onClick={() => ref.current?.close()}>Close</button>
        </div>
      </form>
    </dialog>
  );
}

function Report({ r }: { r: ImportReport | UploadResult }) {
  if ("created" in r)
    return (
      <div role="status" className="ok">
        Added {r.created} image(s).{r.skipped.length > 0 && ` Skipped (not images): ${r.skipped.join(", ")}`}
      </div>
    );
  return (
    <div role="status" className="ok">
      Read {r.images_read} image(s) as {r.format}: added {r.images_added} images and {r.boxes_added} boxes.
      <table className="small" data-testid="import-report"><tbody>
        {Object.entries(r.boxes_per_label ?? {}).map(([l, n]) => (
          <tr key={l}><td>{l}</td><td>{n} box(es)</td><td className="muted">{r.labels_created.includes(l) ? "new label" : "matched"}</td></tr>
        ))}
      </tbody></table>
      <p>Labels created: {r.labels_created.length ? r.labels_created.join(", ") : "none"} · matched to the project's:
        {" "}{r.labels_matched?.length ? r.labels_matched.join(", ") : "none"} · clipped to the image: {r.clipped} box(es) ·
        {" "}skipped: none (a bad box stops the whole import instead)</p>
      {r.warnings.length > 0 && <ul>{r.warnings.map((w, i) => <li key={i}>{w}</li>)}</ul>}
    </div>
  );
}
