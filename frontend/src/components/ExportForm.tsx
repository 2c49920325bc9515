import { useState } from "react";
import { api } from "../session";
import { ErrorText } from "./ErrorText";
import { STATUS_FILTERS } from "../lib/status";

/** Export as a zip: fetched with the token, then offered as a download link. */
export function ExportForm({ pid }: { pid: number }) {
  const [format, setFormat] = useState("coco");
  const [split, setSplit] = useState("");
  const [imageStatus, setImageStatus] = useState("not_rejected");
  const [link, setLink] = useState<{ url: string; name: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  async function go() {
    setBusy(true);
    setError(null);
    try {
      const blob = await api.exportBlob(pid, format, split || undefined, imageStatus);
      if (link) URL.revokeObjectURL(link.url);
      const l = { url: URL.createObjectURL(blob), name: `project-${pid}-${format}${split ? "-" + split : ""}.zip` };
      setLink(l);
      const a = document.createElement("a");
      a.href = l.url;
      a.download = l.name;
      a.click();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="row export" role="group" aria-label="Export">
      <label>Export format
        <select value={format} onChange={(e) => setFormat(e.target.value)}>
          <option value="coco">COCO</option><option value="yolo">YOLO</option><option value="voc">VOC</option>
        </select>
      </label>
      <label>Split <input className="short" value={split} onChange={(e) => setSplit(e.target.value)} placeholder="all" /></label>
      <label>Images
        <select value={imageStatus} onChange={(e) => setImageStatus(e.target.value)}>
          {STATUS_FILTERS.map(([v, t]) => <option key={v} value={v}>{t}</option>)}
        </select>
      </label>
      <button onClick={go} disabled={busy}>{busy ? "Exporting…" : "Export"}</button>
      {link && <a href={link.url} download={link.name}>{link.name}</a>}
      <ErrorText error={error} />
    </div>
  );
}
