import { describe, expect, it } from "vitest";
import { ApiError, buildQuery, createClient, formatDetail, statusPath } from "./client";

interface Call { url: string; init: RequestInit }

/** A fetch that records each request and answers with the queued responses. */
function recorder(responses: Response[]) {
  const calls: Call[] = [];
  const f = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    const r = responses.shift();
    if (!r) throw new TypeError("Failed to fetch");
    return r;
  }) as unknown as typeof fetch;
  return { calls, f };
}
const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

describe("request building", () => {
  it("sends the bearer token and a JSON body", async () => {
    const { calls, f } = recorder([json(201, { id: 3 })]);
    const c = createClient({ token: () => "tok", fetch: f, baseUrl: "http://h" });
    expect(await c.createBox(5, { label_id: 1, x1: 1, y1: 2, x2: 3, y2: 4 })).toEqual({ id: 3 });
    expect(calls[0].url).toBe("http://h/api/images/5/boxes");
    expect(calls[0].init.method).toBe("POST");
    const h = calls[0].init.headers as Record<string, string>;
    expect(h.Authorization).toBe("Bearer tok");
    expect(h["Content-Type"]).toBe("application/json");
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ label_id: 1, x1: 1, y1: 2, x2: 3, y2: 4 });
  });
  it("omits the header without a token", async () => {
    const { calls, f } = recorder([json(200, [])]);
    await createClient({ token: () => null, fetch: f }).listProjects();
    expect((calls[0].init.headers as Record<string, string>).Authorization).toBeUndefined();
  });
  it("drops empty filters from the query", async () => {
    const { calls, f } = recorder([json(200, { items: [], total: 0, offset: 0, limit: 10 })]);
    const c = createClient({ token: () => "t", fetch: f });
    await c.listImages(2, { status: "", label: "kart", q: "a b", has_boxes: false, offset: 20, limit: 10 });
    expect(calls[0].url).toBe("/api/projects/2/images?label=kart&q=a+b&has_boxes=false&offset=20&limit=10");
    expect(buildQuery({})).toBe("");
  });
  it("sends the version of a delete in the query; 204 gives undefined", async () => {
    const { calls, f } = recorder([new Response(null, { status: 204 })]);
    expect(await createClient({ token: () => "t", fetch: f }).deleteBox(9, 4)).toBeUndefined();
    expect(calls[0].url).toBe("/api/boxes/9?version=4");
    expect(calls[0].init.method).toBe("DELETE");
  });
});

describe("errors", () => {
  it("a 409 keeps the body with the current box", async () => {
    const current = { id: 9, version: 3 };
    const { f } = recorder([json(409, { detail: "box 9 is at version 3", current })]);
    const err = await createClient({ token: () => "t", fetch: f }).patchBox(9, { version: 2, x1: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(409);
    expect(err.detail).toBe("box 9 is at version 3");
    expect((err.body as { current: unknown }).current).toEqual(current);
  });
  it("a 422 list of problems becomes one readable line", async () => {
    const { f } = recorder([json(422, { detail: [{ loc: ["body", "name"], msg: "too short" }, { loc: ["query", "limit"], msg: "too big" }] })]);
    const err = await createClient({ token: () => "t", fetch: f }).listProjects().catch((e) => e);
    expect(err.detail).toBe("name: too short; limit: too big");
  });
  it("a non-JSON error page keeps its text", async () => {
    const { f } = recorder([new Response("Bad Gateway", { status: 502 })]);
    const err = await createClient({ token: () => "t", fetch: f }).me().catch((e) => e);
    expect(err.status).toBe(502);
    expect(err.detail).toBe("Bad Gateway");
  });
  it("a network failure is an ApiError with status 0", async () => {
    const { f } = recorder([]);
    const err = await createClient({ token: () => "t", fetch: f }).me().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(0);
  });
  it("formatDetail handles strings, lists and objects", () => {
    expect(formatDetail("x")).toBe("x");
    expect(formatDetail([{ msg: "m" }])).toBe("m");
    expect(formatDetail({ a: 1 })).toBe('{"a":1}');
  });
});

describe("statusPath", () => {
  it("goes through in_review", () => {
    expect(statusPath("unlabeled", "accepted")).toEqual(["in_review", "accepted"]);
    expect(statusPath("in_review", "rejected")).toEqual(["rejected"]);
    expect(statusPath("accepted", "rejected")).toEqual(["in_review", "rejected"]);
    expect(statusPath("accepted", "accepted")).toEqual([]);
    expect(statusPath("rejected", "in_review")).toEqual(["in_review"]);
    expect(statusPath("accepted", "unlabeled")).toEqual(["in_review", "unlabeled"]);  // undo
  });
});
