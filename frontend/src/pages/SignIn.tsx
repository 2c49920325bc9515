import { useState, type FormEvent } from "react";
import { ApiError } from "../api/client";
import { api, setToken, useSession } from "../session";

export default function SignIn() {
  const { setUser } = useSession();
  const [token, setTok] = useState("");
  const [error, setError] = useState("");

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError("");
    setToken(token.trim());
    try {
      setUser(await api.me());
    } catch (err) {
      setToken(null);
      setError(err instanceof ApiError ? err.detail : String(err));
    }
  }

  return (
    <form className="card narrow" onSubmit={submit}>
      <h1>Sign in</h1>
      <p className="muted">Paste an API token. <code>studio serve</code> prints the admin's token when it starts.</p>
      <label>
        API token
        <input type="password" value={token} onChange={(e) => setTok(e.target.value)} autoFocus required autoComplete="off" />
      </label>
      <button type="submit" className="primary">Sign in</button>
      {error && <p role="alert" className="error">{error}</p>}
    </form>
  );
}
