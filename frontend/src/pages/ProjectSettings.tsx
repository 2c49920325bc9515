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
          <button type="button" onClick={() => run(() => api.createUser(username.trim()).then(() => api.addMember(pid, username.trim(), role)))}>
            Create user and add
          </button>
        )}
      </form>
      <ErrorText error={error} />
    </section>
  );
}
