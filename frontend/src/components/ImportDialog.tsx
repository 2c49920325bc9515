import { useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError, uploadWithProgress, type ImportReport, type UploadResult } from "../api/client";
import { api } from "../session";

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
    } finally {
      setProgress(null);
    }
  }

  return (
    <dialog ref={ref} className="card dialog" aria-labelledby="import-h" onClose={onClose}>
      <form onSubmit={submit}>
        <h2 id="import-h">Import</h2>
        <label>Format
          <select value={format} onChange={(e) => setFormat(e.target.value)}>
            {FORMATS.map(([v, t]) => <option key={v} value={v}>{t}</option>)}
          </select>
        </label>
        <label>Files (images, annotation files, or one zip)
          <input type="file" multiple onChange={(e) => setFiles([...(e.target.files ?? [])])} />
        </label>
        {files.length > 0 && <p className="muted">{files.length} file(s), {(files.reduce((s, f) => s + f.size, 0) / 1e6).toFixed(1)} MB</p>}
        {progress !== null && (
          <p><progress value={progress} max={1} aria-label="Upload progress" /> {progress < 1 ? `${Math.round(progress * 100)}% uploaded` : "processing on the server…"}</p>
        )}
        {error && (
          <div role="alert" className="error">
            <strong>Nothing was imported{error.status ? ` (HTTP ${error.status})` : ""}:</strong>
            <ul>{error.detail.split("; ").map((line, i) => <li key={i}>{line}</li>)}</ul>
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
      Read {r.images_read} image(s): added {r.images_added} images and {r.boxes_added} boxes
      {r.labels_created.length > 0 && `; new labels: ${r.labels_created.join(", ")}`}
      {r.clipped > 0 && `; ${r.clipped} box(es) clipped to the image`}.
      {r.warnings.length > 0 && <ul>{r.warnings.map((w, i) => <li key={i}>{w}</li>)}</ul>}
    </div>
  );
}
