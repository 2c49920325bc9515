import { ApiError } from "../api/client";

export const errText = (e: unknown) => (e instanceof ApiError ? e.detail || `HTTP ${e.status}` : String(e));

export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  return <p role="alert" className="error">{errText(error)}</p>;
}
