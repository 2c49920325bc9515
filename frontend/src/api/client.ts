// A small typed client of the studio's REST API. Types come from the generated OpenAPI schema
// (src/api/schema.d.ts, `npm run gen-api` after writing /openapi.json to test-output/openapi.json).
import type { components } from "./schema";

type S = components["schemas"];
export type User = S["UserOut"];
export type Project = S["ProjectOut"];
export type ProjectDetail = S["ProjectDetail"];
export type ProjectCreate = S["ProjectCreate"];
export type Label = S["LabelOut"];
export type LabelCreate = S["LabelCreate"];
export type LabelPatch = S["LabelPatch"];
export type Member = S["MemberOut"];
export type Role = S["Role"];
export type ImageStatus = S["ImageStatus"];
export type ImageItem = S["ImageItem"];
export type ImagePage = S["ImagePage"];
export type ImageDetail = S["ImageDetail"];
export type BoxOut = S["BoxOut"];
export type BoxCompact = S["BoxCompact"];
export type BoxCreate = S["BoxCreate"];
export type BoxPatch = S["BoxPatch"];
export type UploadResult = S["UploadResult"];

export const STATUSES: ImageStatus[] = ["unlabeled", "in_review", "accepted", "rejected"];
export const ROLES: Role[] = ["viewer", "annotator", "admin"];

export interface ImportReport {
  format: string;
  images_read: number;
  images_added: number;
  boxes_added: number;
  labels_created: string[];
  clipped: number;
  warnings: string[];
  labels_matched?: string[];
  boxes_per_label?: Record<string, number>;
}

export type QAPair = S["QAItemOut"];
export type QAPage = S["QAPage"];
export type QAGenerate = S["QAGenerateIn"];
export type QAGenerateOut = S["QAGenerateOut"];
/** The registry of question families (backend/qa/__init__.py); the server names them in a 422 if it changes. */
export const QA_FAMILIES = ["identity", "counting", "spatial", "race", "region", "detection"];

// The runs API (backend/api/runs.py) answers with plain dicts (backend.runs.run_view and the
// gallery), so these shapes are written here from that code; requests use the generated types.
export type RunKind = RunCreate["kind"];
export type RunCreate = S["RunCreate"];
export type AcceptIn = S["AcceptIn"];
export type AcceptOut = S["AcceptOut"];
export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export const FINISHED: RunStatus[] = ["succeeded", "failed", "cancelled"];
export interface TableRow { metric: string; pretrained: number | null; finetuned: number | null; delta: number | null; delta_pct: number | null; prior?: number | null; majority?: number | null; adapter_alone?: number | null }
export interface RunMetrics { before?: Record<string, unknown>; after?: Record<string, unknown>; table?: TableRow[]; [k: string]: unknown }
export interface RunSummary {
  id: number; project_id: number; kind: RunKind; status: RunStatus; phase: string | null; progress: number; step: number;
  total_steps: number | null; learning_rate: number | null; samples_per_s: number | null; eta_seconds: number | null;
  metrics: RunMetrics; error: string | null; adapter_bytes: number | null; merged: boolean; snapshot_id: number | null;
  snapshot_sha256?: string | null; config?: Record<string, unknown>;
  attempts: number; max_attempts: number; cancel_requested: boolean; worker_id: string | null; version: number;
  created_at: string | null; started_at: string | null; ended_at: string | null;
  parent_run_id?: number | null; // retrained from this run (the review loop)
}
export interface RunView extends RunSummary {
  snapshot?: { n_images: number; n_boxes: number; n_qa: number; image_status: string | null };
  config: Record<string, unknown>; loss_history: { step: number; loss: number; lr: number }[]; log_tail: string[]; traceback: string | null;
}
/** One entry of GET /api/models (backend/catalog.py). */
export interface ModelJob { name: string; state: "queued" | "running" | "succeeded" | "failed"; progress?: number; step?: number;
  total_steps?: number; eta_seconds?: number | null; log: string[]; error?: string | null; path?: string | null }
/** What a model pre-trained by the studio was trained on (its studio_pretraining.json). */
export interface PretrainedCard {
  data?: string; steps?: number; samples?: number; seconds?: number; cpu_seconds?: number | null;
  tracks?: string[]; never_seen?: string[]; held_out?: Record<string, number | string | string[]>;
}
export interface CatalogModel {
  id: string; name: string; source: "demo" | "local" | "hub"; family: string | null; model_type: string | null;
  status: "ready" | "building" | "failed" | "not_built" | "needs_hub" | "unsupported"; size_bytes: number | null;
  parameters: number | null; pretrained: PretrainedCard | null;
  note: string | null; job?: ModelJob | null;
  /** run settings the model was pre-trained with (object order, soft box targets); the run form applies them */
  suggested?: Record<string, unknown> | null;
}
export interface GalleryBox { label: string; box: [number, number, number, number]; score?: number | null }
export interface ImageStats { image_id: number; tp: number; fp: number; fn: number; wrong_label: number; f1: number; mean_iou?: number | null }
export interface GalleryItem {
  image_id: number; file_name: string; width: number; height: number; ground_truth: GalleryBox[];
  before: GalleryBox[] | null; after: GalleryBox[] | null; stats_before: ImageStats | null; stats_after: ImageStats | null; change: number | null;
  raw_before?: string | null; raw_after?: string | null;
}
export interface GalleryQuery { sort?: "most_improved" | "most_regressed" | "image"; label?: string; error?: "" | "missed" | "false_box" | "wrong_label"; offset?: number; limit?: number }

export interface ImageFilters {
  status?: ImageStatus | "";
  label?: string;
  split?: string;
  has_boxes?: boolean | "";
  q?: string;
  meta_key?: string;
  meta_value?: string;
}

/** A non-2xx answer: `detail` made readable; `body` is the parsed JSON (a 409 on a box carries `current`). */
export class ApiError extends Error {
  constructor(public status: number, public detail: string, public body: unknown) {
    super(`${status}: ${detail}`);
  }
}

/** FastAPI's `detail` is a string, or (422) a list of {loc, msg}: one readable line per problem. */
export function formatDetail(detail: unknown): string {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail))
    return detail
      .map((d) => {
        if (d && typeof d === "object" && "msg" in d) {
          const loc = Array.isArray((d as { loc?: unknown[] }).loc)
            ? (d as { loc: unknown[] }).loc.filter((p) => p !== "body" && p !== "query").join(".")
            : "";
          return loc ? `${loc}: ${(d as { msg: string }).msg}` : String((d as { msg: string }).msg);
        }
        return JSON.stringify(d);
      })
      .join("; ");
  return detail === undefined ? "" : JSON.stringify(detail);
}

type Query = Record<string, string | number | boolean | null | undefined>;

/** The query string of the defined, non-empty values (an empty filter means "no filter"). */
export function buildQuery(q?: Query): string {
  if (!q) return "";
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== "") p.append(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}

export interface ClientOptions {
  baseUrl?: string;
  token: () => string | null;
  fetch?: typeof fetch;
}

interface RequestOpts { query?: Query; json?: unknown; form?: FormData }

export type Client = ReturnType<typeof createClient>;

export function createClient(opts: ClientOptions) {
  const base = opts.baseUrl ?? "";
  const doFetch = opts.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));

  function headers(): Record<string, string> {
    const t = opts.token();
    return t ? { Authorization: `Bearer ${t}` } : {};
  }

  async function raw(method: string, path: string, o: RequestOpts = {}): Promise<Response> {
    const h = headers();
    let body: BodyInit | undefined;
    if (o.json !== undefined) {
      h["Content-Type"] = "application/json";
      body = JSON.stringify(o.json);
    } else if (o.form) body = o.form;
    let res: Response;
    try {
      res = await doFetch(base + path + buildQuery(o.query), { method, headers: h, body });
    } catch (e) {
      throw new ApiError(0, `network error: ${(e as Error).message}`, null);
    }
    if (!res.ok) {
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON (a proxy's HTML page): keep the text */
      }
      const detail =
        parsed && typeof parsed === "object" && "detail" in parsed
          ? formatDetail((parsed as { detail: unknown }).detail)
          : text || res.statusText;
      throw new ApiError(res.status, detail, parsed);
    }
    return res;
  }

  async function req<T>(method: string, path: string, o: RequestOpts = {}): Promise<T> {
    const res = await raw(method, path, o);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  const blob = async (path: string, query?: Query) => (await raw("GET", path, { query })).blob();

  return {
    base,
    authHeaders: headers,
    /** Any endpoint not wrapped below. */
    request: <T,>(method: string, path: string, o: RequestOpts = {}) => req<T>(method, path, o),
    me: () => req<User>("GET", "/api/auth/me"),
    listUsers: () => req<User[]>("GET", "/api/users"),
    createUser: (username: string, is_admin = false) => req<User>("POST", "/api/users", { json: { username, is_admin } }),

    listProjects: () => req<Project[]>("GET", "/api/projects"),
    createProject: (body: ProjectCreate) => req<ProjectDetail>("POST", "/api/projects", { json: body }),
    getProject: (pid: number) => req<ProjectDetail>("GET", `/api/projects/${pid}`),
    patchProject: (pid: number, body: S["ProjectPatch"]) => req<ProjectDetail>("PATCH", `/api/projects/${pid}`, { json: body }),
    deleteProject: (pid: number) => req<void>("DELETE", `/api/projects/${pid}`),

    createLabel: (pid: number, body: LabelCreate) => req<Label>("POST", `/api/projects/${pid}/labels`, { json: body }),
    patchLabel: (pid: number, lid: number, body: LabelPatch) =>
      req<Label>("PATCH", `/api/projects/${pid}/labels/${lid}`, { json: body }),
    deleteLabel: (pid: number, lid: number) => req<void>("DELETE", `/api/projects/${pid}/labels/${lid}`),

    listMembers: (pid: number) => req<Member[]>("GET", `/api/projects/${pid}/members`),
    addMember: (pid: number, username: string, role: Role) =>
      req<Member>("POST", `/api/projects/${pid}/members`, { json: { username, role } }),
    setMemberRole: (pid: number, uid: number, role: Role) =>
      req<Member>("PATCH", `/api/projects/${pid}/members/${uid}`, { json: { role } }),
    removeMember: (pid: number, uid: number) => req<void>("DELETE", `/api/projects/${pid}/members/${uid}`),

    listImages: (pid: number, f: ImageFilters & { offset?: number; limit?: number; after_id?: number; with_total?: boolean }) =>
      req<ImagePage>("GET", `/api/projects/${pid}/images`, { query: { ...f } }),
    getImage: (iid: number) => req<ImageDetail>("GET", `/api/images/${iid}`),
    patchImage: (iid: number, body: S["ImagePatch"]) => req<ImageDetail>("PATCH", `/api/images/${iid}`, { json: body }),
    setStatus: (iid: number, status: ImageStatus) =>
      req<ImageDetail>("POST", `/api/images/${iid}/status`, { json: { status } }),
    bulkPatch: (pid: number, body: S["BulkImagePatch"]) =>
      req<S["BulkResult"]>("PATCH", `/api/projects/${pid}/images`, { json: body }),
    imageBlob: (iid: number, thumbnail: boolean) => blob(`/api/images/${iid}/${thumbnail ? "thumbnail" : "file"}`),
    exportBlob: (pid: number, format: string, split?: string, family?: string, image_status?: string) =>
      blob(`/api/projects/${pid}/export`, { format, split, family, image_status }),

    createBox: (iid: number, body: BoxCreate) => req<BoxOut>("POST", `/api/images/${iid}/boxes`, { json: body }),
    patchBox: (bid: number, body: BoxPatch) => req<BoxOut>("PATCH", `/api/boxes/${bid}`, { json: body }),
    deleteBox: (bid: number, version: number) => req<void>("DELETE", `/api/boxes/${bid}`, { query: { version } }),

    listQA: (pid: number, q: { family?: string; split?: string; image_id?: number; q?: string; reviewed?: boolean | ""; offset?: number; limit?: number }) =>
      req<QAPage>("GET", `/api/projects/${pid}/qa`, { query: { ...q } }),
    patchQA: (id: number, body: Partial<Pick<QAPair, "question" | "answer" | "reviewed">>) =>
      req<QAPair>("PATCH", `/api/qa/${id}`, { json: body }),
    deleteQA: (id: number) => req<void>("DELETE", `/api/qa/${id}`),
    generateQA: (pid: number, body: QAGenerate) => req<QAGenerateOut>("POST", `/api/projects/${pid}/qa/generate`, { json: body }),

    listRuns: (pid: number, q: { offset?: number; limit?: number } = {}) =>
      req<{ items: RunSummary[]; total: number }>("GET", `/api/projects/${pid}/runs`, { query: { ...q } }),
    createRun: (pid: number, body: RunCreate) => req<RunView>("POST", `/api/projects/${pid}/runs`, { json: body }),
    getRun: (rid: number) => req<RunView>("GET", `/api/runs/${rid}`),
    cancelRun: (rid: number) => req<RunView>("POST", `/api/runs/${rid}/cancel`),
    mergeRun: (rid: number) => req<{ run_id: number; queued: boolean; merged: boolean }>("POST", `/api/runs/${rid}/merge`),
    adapterBlob: (rid: number) => blob(`/api/runs/${rid}/adapter`),
    gallery: (rid: number, q: GalleryQuery) =>
      req<{ items: GalleryItem[]; total: number }>("GET", `/api/runs/${rid}/gallery`, { query: { ...q } }),
    listModels: () => req<{ items: CatalogModel[]; models_dir: string }>("GET", "/api/models"),
    buildDemoModel: (steps?: number) => req<ModelJob>("POST", "/api/models/demo/build", { json: steps ? { steps } : {} }),
    modelJob: (name: string) => req<ModelJob>("GET", `/api/models/jobs/${name}`),
    accept: (rid: number, body: AcceptIn) => req<AcceptOut>("POST", `/api/runs/${rid}/accept`, { json: body }),
  };
}

/** The image-review workflow only moves through in_review: the steps to reach `target` from `from`. */
export function statusPath(from: ImageStatus, target: ImageStatus): ImageStatus[] {
  if (from === target) return [];
  if (target === "in_review") return ["in_review"];
  if (from === "in_review") return [target];
  return ["in_review", target];
}

/** POST multipart with upload progress (fetch has none): resolves to the JSON answer, rejects with ApiError. */
export function uploadWithProgress<T>(
  url: string, authHeaders: Record<string, string>, form: FormData, onProgress: (fraction: number) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    for (const [k, v] of Object.entries(authHeaders)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onerror = () => reject(new ApiError(0, "network error during upload", null));
    xhr.onload = () => {
      let body: unknown = xhr.responseText;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* keep text */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as T);
      else {
        const detail = body && typeof body === "object" && "detail" in body ? formatDetail((body as { detail: unknown }).detail) : String(body);
        reject(new ApiError(xhr.status, detail, body));
      }
    };
    xhr.send(form);
  });
}
