import { useCallback, useEffect, useRef, useState } from "react";
import { FINISHED, type RunView } from "../api/client";
import { readEvents } from "../lib/sse";
import { api } from "../session";

/** The run, live: one GET, then the server-sent events of GET /api/runs/{id}/events (read with
 *  fetch, since EventSource cannot send the bearer token). If the stream breaks before the run
 *  ends (a proxy that buffers, a restart), it falls back to polling every 2 s. `refresh` re-reads
 *  once and polls until `until` holds (after a merge, say). */
export function useRun(rid: number) {
  const [run, setRun] = useState<RunView | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState<"stream" | "polling" | "">("");
  const timer = useRef(0);

  const poll = useCallback((until: (r: RunView) => boolean, signal: AbortSignal) => {
    const tick = () => api.getRun(rid).then((r) => {
      if (signal.aborted) return;
      setRun(r);
      if (!until(r)) timer.current = window.setTimeout(tick, 2000);
      else setLive("");
    }, (e) => { if (!signal.aborted) setError(e); });
    window.clearTimeout(timer.current);
    tick();
  }, [rid]);

  const ctl = useRef<AbortController | null>(null);
  useEffect(() => {
    const c = new AbortController();
    ctl.current = c;
    const finished = (r: RunView) => FINISHED.includes(r.status);
    (async () => {
      let loaded = false;
      try {
        const first = await api.getRun(rid);
        if (c.signal.aborted) return;
        setRun(first);
        loaded = true;
        if (finished(first)) return;
        setLive("stream");
        let last = first;
        await readEvents(`/api/runs/${rid}/events`, api.authHeaders(), (e) => {
          if (e.event === "run") { last = JSON.parse(e.data) as RunView; setRun(last); }
        }, c.signal);
        if (c.signal.aborted) return;
        if (finished(last)) { setLive(""); return; }
      } catch (e) {
        if (c.signal.aborted) return;
        if (!loaded) { setError(e); return; } // no such run / no access: nothing to poll
      }
      setLive("polling");
      poll(finished, c.signal);
    })();
    return () => { c.abort(); window.clearTimeout(timer.current); };
  }, [rid, poll]);

  const refresh = useCallback((until: (r: RunView) => boolean = () => true) => {
    if (ctl.current) { setLive("polling"); poll(until, ctl.current.signal); }
  }, [poll]);
  return { run, setRun, error, setError, live, refresh };
}
