import { useState } from "react";
import { api } from "../session";
import { ErrorText } from "./ErrorText";
import { STATUS_FILTERS } from "../lib/status";

const FORMATS: [string, string][] = [
  ["coco", "COCO"], ["yolo", "YOLO"], ["voc", "VOC"], ["hf_parquet", "Hugging Face Parquet"],
  ["labelstudio", "Label Studio JSON"], ["cvat", "CVAT 1.1 XML"],
  ["msswift", "ms-swift instruction JSONL"], ["llamafactory", "LLaMA-Factory sharegpt"],
];
const INSTRUCTION = new Set(["msswift", "llamafactory"]);  // these take the model family's box syntax
const FAMILIES: [string, string][] = [
  ["qwen2_vl", "Qwen2-VL"], ["qwen2_5_vl", "Qwen2.5-VL"], ["paligemma", "PaliGemma"], ["smolvlm", "SmolVLM"],
];

/** Export as a zip: fetched with the token, then offered as a download link. */
export function ExportForm({ pid }: { pid: number }) {
  const [format, setFormat] = useState("coco");
  const [split, setSplit] = useState("");
  const [family, setFamily] = useState("qwen2_vl");
  const [imageStatus, setImageStatus] = useState("not_rejected");
  const [link, setLink] = useState<{ url: string; name: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  async function go() {
    setBusy(true);
    setError(null);
    try {
      const fam = INSTRUCTION.has(format) ? family : undefined;
      const blob = await api.exportBlob(pid, format, split || undefined, fam, imageStatus);
      if (link) URL.revokeObjectURL(link.url);
      const name = `project-${pid}-${format}${fam ? "-" + fam : ""}${split ? "-" + split : ""}.zip`;
      const l = { url: URL.createObjectURL(blob), name };
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
          {FORMATS.map(([v, t]) => <option key={v} value={v}>{t}</option>)}
        </select>
      </label>
      {INSTRUCTION.has(format) && (
        <label>Box syntax of
          <select value={family} onChange={(e) => setFamily(e.target.value)}>
            {FAMILIES.map(([v, t]) => <option key={v} value={v}>{t}</option>)}
          </select>
        </label>
      )}
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
