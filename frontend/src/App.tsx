import { useEffect, useState } from "react";
import { Link, Navigate, Route, Routes, useNavigate } from "react-router";
import type { User } from "./api/client";
import { api, getToken, SessionContext, setToken } from "./session";
import SignIn from "./pages/SignIn";
import Projects from "./pages/Projects";
import ProjectSettings from "./pages/ProjectSettings";
import Dataset from "./pages/Dataset";
import Editor from "./pages/Editor";
import QA from "./pages/QA";
import Runs from "./pages/Runs";
import RunView from "./pages/RunView";
import Gallery from "./pages/Gallery";
import Models from "./pages/Models";
import Compare from "./pages/Compare";
import TryIt from "./pages/TryIt";
import ReviewQueue from "./pages/ReviewQueue";
import Splits from "./pages/Splits";

export default function App() {
  const [user, setUser] = useState<User | null>(null);
  const [checking, setChecking] = useState(!!getToken());
  const navigate = useNavigate();

  useEffect(() => {
    if (!getToken()) return;
    api.me().then(setUser, () => setToken(null)).finally(() => setChecking(false));
  }, []);

  const signOut = () => {
    setToken(null);
    setUser(null);
    navigate("/signin");
  };

  if (checking) return <p className="pad">Checking your token…</p>;
  return (
    <SessionContext.Provider value={{ user, setUser, signOut }}>
      <header className="topbar">
        <Link to="/" className="brand">VLM Studio</Link>
        {user && (
          <nav aria-label="Account">
            <Link to="/models">Models</Link>
            <span className="muted">signed in as <strong>{user.username}</strong></span>
            <button onClick={signOut}>Sign out</button>
          </nav>
        )}
      </header>
      <main>
        {user ? (
          <Routes>
            <Route path="/" element={<Projects />} />
            <Route path="/signin" element={<Navigate to="/" replace />} />
            <Route path="/projects/:pid" element={<Dataset />} />
            <Route path="/projects/:pid/settings" element={<ProjectSettings />} />
            <Route path="/projects/:pid/images/:iid" element={<Editor />} />
            <Route path="/projects/:pid/qa" element={<QA />} />
            <Route path="/projects/:pid/splits" element={<Splits />} />
            <Route path="/projects/:pid/runs" element={<Runs />} />
            <Route path="/projects/:pid/runs/:rid" element={<RunView />} />
            <Route path="/projects/:pid/runs/:rid/gallery" element={<Gallery />} />
            <Route path="/projects/:pid/compare" element={<Compare />} />
            <Route path="/projects/:pid/runs/:rid/try" element={<TryIt />} />
            <Route path="/models" element={<Models />} />
            <Route path="/projects/:pid/review" element={<ReviewQueue />} />
            <Route path="*" element={<p className="pad">Page not found. <Link to="/">Projects</Link></p>} />
          </Routes>
        ) : (
          <SignIn />
        )}
      </main>
    </SessionContext.Provider>
  );
}
