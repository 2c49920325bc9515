// Server-sent events over fetch(): EventSource cannot send the Authorization header the API
// requires, so the run page reads the text/event-stream body itself and parses it here.

export interface SseEvent { event: string; data: string; id: string | null }

/** An incremental parser of the event-stream format (WHATWG HTML §9.2): feed it decoded chunks as
 *  they arrive (split anywhere, even inside a line or a CRLF); it returns the complete events. */
export class SseParser {
  private buf = "";
  private data: string[] = [];
  private event = "";
  private id: string | null = null;

  feed(chunk: string): SseEvent[] {
    this.buf += chunk;
    const out: SseEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      // a lone CR at the end may be the first half of a CRLF split across chunks: wait for more
      if (!m || (m[0] === "\r" && m.index === this.buf.length - 1)) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      if (line === "") {
        if (this.data.length) out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
        this.data = [];
        this.event = "";
        continue;
      }
      if (line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.data.push(value);
      else if (field === "event") this.event = value;
      else if (field === "id") this.id = value;
    }
    return out;
  }
}

/** Read an event stream with these headers until it ends (resolves) or fails (rejects with the
 *  HTTP status in the message); abort through `signal`. */
export async function readEvents(url: string, headers: Record<string, string>, onEvent: (e: SseEvent) => void,
  signal?: AbortSignal, fetchImpl: typeof fetch = fetch): Promise<void> {
  const res = await fetchImpl(url, { headers: { ...headers, Accept: "text/event-stream" }, signal });
  if (!res.ok || !res.body) throw new Error(`event stream answered HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    for (const e of parser.feed(value)) onEvent(e);
  }
}
