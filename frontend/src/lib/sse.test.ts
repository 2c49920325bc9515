import { describe, expect, it } from "vitest";
import { readEvents, SseParser } from "./sse";

describe("SseParser", () => {
  it("parses events split anywhere across chunks", () => {
    const text = 'event: run\nid: 3\ndata: {"a":1}\n\n: keep-alive\n\nevent: end\ndata: {}\n\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const got = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut))];
      expect(got).toEqual([{ event: "run", data: '{"a":1}', id: "3" }, { event: "end", data: "{}", id: "3" }]);
    }
  });
  it("joins multi-line data, defaults the event name, accepts CRLF split between chunks", () => {
    const p = new SseParser();
    expect(p.feed("data: a\r\ndata:b\r")).toEqual([]);
    expect(p.feed("\n\r\n")).toEqual([{ event: "message", data: "a\nb", id: null }]);
  });
  it("ignores comments and events without data", () => {
    expect(new SseParser().feed(": ping\n\nevent: x\n\n")).toEqual([]);
  });
});

describe("readEvents", () => {
  it("reads a streamed body with the auth header and stops at its end", async () => {
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode("event: run\nda"));
        c.enqueue(enc.encode('ta: {"status":"running"}\n\nevent: end\ndata: {}\n\n'));
        c.close();
      },
    });
    let seen: RequestInit | undefined;
    const f = (async (_u: string, init: RequestInit) => { seen = init; return new Response(body, { status: 200 }); }) as unknown as typeof fetch;
    const events: string[] = [];
    await readEvents("/api/runs/1/events", { Authorization: "Bearer t" }, (e) => events.push(`${e.event}:${e.data}`), undefined, f);
    expect(events).toEqual(['run:{"status":"running"}', "end:{}"]);
    expect((seen!.headers as Record<string, string>).Authorization).toBe("Bearer t");
  });
  it("rejects on an HTTP error", async () => {
    const f = (async () => new Response("no", { status: 401 })) as unknown as typeof fetch;
    await expect(readEvents("/x", {}, () => {}, undefined, f)).rejects.toThrow("HTTP 401");
  });
});
