import { useEffect, useState, type FormEvent } from "react";
import { useParams } from "react-router";
import { ROLES, type Label, type Member, type Role } from "../api/client";
import { ErrorText } from "../components/ErrorText";
import { PALETTE } from "../components/palette";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { api, useSession } from "../session";

export default function ProjectSettings() {
  const pid = Number(useParams().pid);
  const { project, error, reload } = useProject(pid);
  if (!project) return <div className="pad"><ErrorText error={error} />{!error && "Loading…"}</div>;
  return (
    <div className="pad">
      <ProjectNav project={project} />
      <h1>Settings</h1>
      <Labels pid={pid} labels={project.labels} reload={reload} />
      {project.role === "admin" && <Members pid={pid} />}
      <Team />
    </div>
  );
}

function Labels({ pid, labels, reload }: { pid: number; labels: Label[]; reload: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [name, setName] = useState("");
  const [color, setColor] = useState(PALETTE[labels.length % PALETTE.length]);
  const [hotkey, setHotkey] = useState("");
  const run = async (f: () => Promise<unknown>) => {
    setError(null);
    try {
      await f();
      reload();
    } catch (e) {
      setError(e);
    }
  };
  const add = (e: FormEvent) => {
    e.preventDefault();
    run(async () => {
      await api.createLabel(pid, { name, color, hotkey: hotkey || null });
      setName("");
      setHotkey("");
    });
  };
  return (
    <section className="card" aria-labelledby="labels-h">
      <h2 id="labels-h">Labels</h2>
      <table>
        <thead><tr><th>Name</th><th>Colour</th><th>Hotkey</th><th /></tr></thead>
        <tbody>
          {labels.map((l) => <LabelRow key={`${l.id}-${l.name}-${l.color}-${l.hotkey}`} pid={pid} label={l} run={run} />)}
        </tbody>
      </table>
      <form className="row" onSubmit={add}>
        <label>New label <input value={name} onChange={(e) => setName(e.target.value)} required /></label>
        <label>Colour <input type="color" value={color} onChange={(e) => setColor(e.target.value)} /></label>
        <label>Hotkey <input className="key" maxLength={1} value={hotkey} onChange={(e) => setHotkey(e.target.value)} /></label>
        <button type="submit">Add label</button>
      </form>
      <ErrorText error={error} />
    </section>
  );
}

function LabelRow({ pid, label, run }: { pid: number; label: Label; run: (f: () => Promise<unknown>) => void }) {
  const [name, setName] = useState(label.name);
  const [color, setColor] = useState(label.color);
  const [hotkey, setHotkey] = useState(label.hotkey ?? "");
  const dirty = name !== label.name || color !== label.color || hotkey !== (label.hotkey ?? "");
  return (
    <tr>
      <td><input aria-label={`Name of label ${label.name}`} value={name} onChange={(e) => setName(e.target.value)} /></td>
      <td><input aria-label={`Colour of label ${label.name}`} type="color" value={color} onChange={(e) => setColor(e.target.value)} /></td>
      <td><input aria-label={`Hotkey of label ${label.name}`} className="key" maxLength={1} value={hotkey} onChange={(e) => setHotkey(e.target.value)} /></td>
      <td>
        <button disabled={!dirty} onClick={() => run(() => api.patchLabel(pid, label.id, { name, color, hotkey: hotkey || null }))}>Save</button>
        <button className="danger" onClick={() => confirm(`Delete label "${label.name}" and all its boxes?`) && run(() => api.deleteLabel(pid, label.id))}>
          Delete
        </button>
      </td>
    </tr>
  );
}

function Members({ pid }: { pid: number }) {
  const { user } = useSession();
  const [members, setMembers] = useState<Member[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<Role>("annotator");
  const [issued, setIssued] = useState<{ username: string; token: string } | null>(null);
  const load = () => api.listMembers(pid).then(setMembers, setError);
  useEffect(() => {
    load();
  }, [pid]); // eslint-disable-line react-hooks/exhaustive-deps
  const run = async (f: () => Promise<unknown>) => {
    setError(null);
    try {
      await f();
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section className="card" aria-labelledby="members-h">
      <h2 id="members-h">Members and roles</h2>
      <table>
        <thead><tr><th>User</th><th>Role</th><th /></tr></thead>
        <tbody>
          {members.map((m) => (
            <tr key={m.user_id}>
              <td>{m.username}</td>
              <td>
                <select aria-label={`Role of ${m.username}`} value={m.role} onChange={(e) => run(() => api.setMemberRole(pid, m.user_id, e.target.value as Role))}>
                  {ROLES.map((r) => <option key={r}>{r}</option>)}
                </select>
              </td>
              <td><button className="danger" onClick={() => run(() => api.removeMember(pid, m.user_id))}>Remove {m.username}</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="row" onSubmit={(e) => { e.preventDefault(); run(() => api.addMember(pid, username.trim(), role)); }}>
        <label>Username <input value={username} onChange={(e) => setUsername(e.target.value)} required /></label>
        <label>Role
          <select aria-label="Role for the new member" value={role} onChange={(e) => setRole(e.target.value as Role)}>{ROLES.map((r) => <option key={r}>{r}</option>)}</select>
        </label>
        <button type="submit">Add member</button>
        {user?.is_admin && (
          <button type="button" onClick={() => run(async () => {
            const u = await api.createUser(username.trim());
            await api.addMember(pid, u.username, role);
            setIssued({ username: u.username, token: (await issueToken(u.id, "first sign-in")).token });
          })}>
            Create user and add
          </button>
        )}
      </form>
      {issued && <TokenOnce {...issued} onDone={() => setIssued(null)} />}
      <ErrorText error={error} />
    </section>
  );
}

interface TokenRow { id: number; name: string; prefix: string; created_at: string; last_used_at: string | null }
const issueToken = (uid: number, name: string) =>
  api.request<TokenRow & { token: string }>("POST", `/api/users/${uid}/tokens`, { json: { name } });

/** A token just issued: shown this once (the server keeps only its hash), with a copy button. */
function TokenOnce({ username, token, onDone }: { username: string; token: string; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try { await navigator.clipboard.writeText(token); setCopied(true); } catch { setCopied(false); }
  };
  return (
    <div className="card" role="status" aria-label={`New token for ${username}`}>
      <p>API token for <b>{username}</b>. Copy it now: it is shown only once. They sign in with it.</p>
      <p className="token-once" data-testid="new-token">{token}</p>
      <div className="row">
        <button onClick={copy}>{copied ? "Copied" : "Copy token"}</button>
        <button onClick={onDone}>Done</button>
      </div>
    </div>
  );
}

/** Platform admins: the users of the studio, their API tokens (issue, revoke). */
function Team() {
  const { user } = useSession();
  const [users, setUsers] = useState<{ id: number; username: string; is_admin: boolean }[]>([]);
  const [tokens, setTokens] = useState<Record<number, TokenRow[]>>({});
  const [issued, setIssued] = useState<{ username: string; token: string } | null>(null);
  const [username, setUsername] = useState("");
  const [admin, setAdmin] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const load = async () => {
    const us = await api.listUsers();
    setUsers(us);
    const all = await Promise.all(us.map((u) => api.request<TokenRow[]>("GET", `/api/users/${u.id}/tokens`)));
    setTokens(Object.fromEntries(us.map((u, i) => [u.id, all[i]])));
  };
  useEffect(() => { if (user?.is_admin) load().catch(setError); }, [user?.is_admin]); // eslint-disable-line react-hooks/exhaustive-deps
  if (!user?.is_admin) return null;
  const run = async (f: () => Promise<unknown>) => {
    setError(null);
    try { await f(); await load(); } catch (e) { setError(e); }
  };
  return (
    <section className="card" aria-labelledby="team-h">
      <h2 id="team-h">Team (studio users and API tokens)</h2>
      <table>
        <thead><tr><th>User</th><th>Tokens</th><th /></tr></thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.id}>
              <td>{u.username}{u.is_admin && <span className="muted"> (admin)</span>}</td>
              <td>
                {(tokens[u.id] ?? []).length === 0 && <span className="muted">none</span>}
                {(tokens[u.id] ?? []).map((t) => (
                  <span key={t.id} className="row" style={{ display: "inline-flex", marginRight: 8 }}>
                    <code>{t.prefix}…</code> {t.name} <span className="muted small">created {t.created_at.slice(0, 10)}</span>
                    <button className="danger" aria-label={`Revoke ${u.username}'s token ${t.prefix}`}
                      onClick={() => confirm(`Revoke ${u.username}'s token ${t.prefix}…? It stops working at once.`) &&
                        run(() => api.request("DELETE", `/api/users/${u.id}/tokens/${t.id}`))}>Revoke</button>
                  </span>
                ))}
              </td>
              <td><button onClick={() => run(async () => setIssued({ username: u.username, token: (await issueToken(u.id, "issued in Settings")).token }))}>
                Issue token for {u.username}</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="row" onSubmit={(e) => { e.preventDefault(); run(async () => {
        const u = await api.createUser(username.trim(), admin);
        setIssued({ username: u.username, token: (await issueToken(u.id, "first sign-in")).token });
        setUsername("");
      }); }}>
        <label>New user <input value={username} onChange={(e) => setUsername(e.target.value)} required /></label>
        <label className="inline"><input type="checkbox" checked={admin} onChange={(e) => setAdmin(e.target.checked)} /> studio admin</label>
        <button type="submit">Create user and issue token</button>
      </form>
      {issued && <TokenOnce {...issued} onDone={() => setIssued(null)} />}
      <ErrorText error={error} />
    </section>
  );
}
