import { useEffect, useState, type ImgHTMLAttributes } from "react";
import { api } from "../session";

// Image bytes need the bearer token, which an <img src> cannot send: fetch them as blobs and show
// object URLs. Loaded ones are kept (LRU) so scrolling back does not refetch; a cell that scrolls
// out of view before its thumbnail arrived aborts the request, so fast scrolling over 100k images
// does not queue thousands of fetches.
const MAX = 800;
const cache = new Map<string, string>();

function remember(key: string, url: string) {
  cache.set(key, url);
  if (cache.size > MAX) {
    const oldest = cache.keys().next().value as string;
    URL.revokeObjectURL(cache.get(oldest)!);
    cache.delete(oldest);
  }
}

export function useImageUrl(imageId: number, thumbnail: boolean): string | null {
  const key = `${imageId}:${thumbnail ? "t" : "f"}`;
  const [url, setUrl] = useState<string | null>(() => cache.get(key) ?? null);
  useEffect(() => {
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key); // refresh its LRU position
      cache.set(key, hit);
      setUrl(hit);
      return;
    }
    setUrl(null);
    const ctl = new AbortController();
    fetch(`/api/images/${imageId}/${thumbnail ? "thumbnail" : "file"}`, { headers: api.authHeaders(), signal: ctl.signal })
      .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((b) => {
        const u = URL.createObjectURL(b);
        remember(key, u);
        setUrl(u);
      })
      .catch(() => {});
    return () => ctl.abort();
  }, [key, imageId, thumbnail]);
  return url;
}

export function AuthImage({ imageId, thumbnail, ...rest }: { imageId: number; thumbnail: boolean } & ImgHTMLAttributes<HTMLImageElement>) {
  const url = useImageUrl(imageId, thumbnail);
  return url ? <img src={url} {...rest} /> : <div className="img-placeholder" aria-hidden />;
}
