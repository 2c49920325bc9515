// The signed-in session: the API token lives in localStorage so a reload keeps you signed in.
import { createContext, useContext } from "react";
import { createClient, type Client, type User } from "./api/client";

const KEY = "vlm-studio-token";
export const getToken = () => localStorage.getItem(KEY);
export const setToken = (t: string | null) => (t ? localStorage.setItem(KEY, t) : localStorage.removeItem(KEY));

export const api: Client = createClient({ token: getToken });

export interface Session { user: User | null; setUser: (u: User | null) => void; signOut: () => void }
export const SessionContext = createContext<Session>({ user: null, setUser: () => {}, signOut: () => {} });
export const useSession = () => useContext(SessionContext);
