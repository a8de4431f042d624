// The dashboard's shell: login, navigation (history API, paths under /ui/), live updates.
import { ApiError, get, liveStream, login, setUnauthorizedHandler, token, getAll } from "./api.js";
import { esc } from "./plot.js";
import * as campaigns from "./campaigns.js";
import * as catalogue from "./catalogue.js";
import * as records from "./records.js";

const app = document.getElementById("app");
export const state = { me: null, page: null, stopLive: null, tenants: null };

const ROUTES = [
  [/^\/ui\/login$/, () => loginPage()],
  [/^\/ui\/campaigns$/, () => campaigns.list],
  [/^\/ui\/campaigns\/([\w-]+)$/, () => campaigns.detail],
  [/^\/ui\/requests$/, () => records.requestTable],
  [/^\/ui\/requests\/([\w-]+)$/, () => records.requestPage],
  [/^\/ui\/results$/, () => records.resultTable],
  [/^\/ui\/results\/([\w-]+)$/, () => records.resultPage],
  [/^\/ui\/tenants$/, () => catalogue.tenants],
  [/^\/ui\/capabilities$/, () => catalogue.capabilities],
  [/^\/ui\/capabilities\/([\w.-]+)\/([\w.-]+)$/, () => catalogue.capabilities],
];

export function navigate(path, replace = false) {
  if (replace) history.replaceState({}, "", path);
  else history.pushState({}, "", path);
  route();
}

function loginPage() {
  return {
    async render(el) {
      document.getElementById("nav").hidden = true;
      el.innerHTML = `<div class="panel login"><h1>Sign in to bigmap</h1>
        <form id="login-form">
          <label for="username">User</label><input id="username" name="username" autocomplete="username" required>
          <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
          <button class="primary" type="submit">Sign in</button>
          <p id="login-error" class="error" role="alert"></p>
        </form>
        <p class="muted">The same users and access tiers as the API (<code>bigmap user add</code>).</p></div>`;
      el.querySelector("#login-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const f = new FormData(ev.target);
        try {
          await login(f.get("username"), f.get("password"));
          const next = new URLSearchParams(location.search).get("next");
          // replace the login address with the page asked for (never left on /ui/login?next=)
          navigate(next && next.startsWith("/ui/") && !next.startsWith("/ui/login") ? next : "/ui/campaigns", true);
        } catch (e) {
          el.querySelector("#login-error").textContent = e instanceof ApiError && e.status === 401 && !/disabled/.test(e.message) ? "Wrong user or password." : String(e.message || e);  // 429 and a disabled user say why
        }
      });
    },
  };
}

function signOut() {
  token.clear();
  state.me = null;
  if (state.stopLive) { state.stopLive(); state.stopLive = null; }
  navigate("/ui/login", true);
}

setUnauthorizedHandler(() => {
  if (location.pathname === "/ui/login") return;
  token.clear();
  state.me = null;
  if (state.stopLive) { state.stopLive(); state.stopLive = null; }
  navigate(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
});

async function ensureUser() {
  if (state.me) return state.me;
  state.me = await get("users/me");
  document.getElementById("who").innerHTML = `<span title="role ${esc(state.me.role)}">${esc(state.me.name)}</span> <span class="badge">${esc(state.me.role)}</span><button id="signout" type="button">Sign out</button>`;
  document.getElementById("signout").addEventListener("click", signOut);
  if (!state.stopLive) {
    const dot = document.getElementById("live");
    state.stopLive = liveStream(
      (msg) => { state.lastChange = msg; if (state.page?.onChange) state.page.onChange(msg); },
      (on) => { dot.className = `live ${on ? "on" : "off"}`; dot.title = on ? "live updates on" : "live updates reconnecting"; document.body.dataset.live = on ? "on" : "off"; },
    );
  }
  return state.me;
}

// tenant names by id (the tenants list is visible to every signed-in user)
export async function tenantNames(force = false) {
  if (!state.tenants || force) {
    const rows = await getAll("tenants");
    state.tenants = Object.fromEntries(rows.map((t) => [t.id, t]));
  }
  return state.tenants;
}

async function route() {
  if (state.page?.dispose) state.page.dispose();
  state.page = null;
  let path = location.pathname.replace(/\/+$/, "") || "/ui/campaigns";
  if (path === "/ui") path = "/ui/campaigns";
  if (path !== "/ui/login" && !token.get()) {
    navigate(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
    return;
  }
  document.getElementById("nav").hidden = path === "/ui/login";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", path.startsWith(`/ui/${a.dataset.nav}`));
  let page = null, args = [];
  for (const [re, make] of ROUTES) {
    const m = re.exec(path);
    if (m) { page = make(); args = m.slice(1).map(decodeURIComponent); break; }
  }
  const token0 = Symbol("page");
  state.current = token0;
  if (!page) { app.innerHTML = `<h1>Not found</h1><p>No page ${esc(path)}. <a href="/ui/campaigns" data-link>Campaigns</a></p>`; return; }
  try {
    if (path !== "/ui/login") await ensureUser();
    if (state.current !== token0) return;
    // each page draws into its own element: late writes of a page left behind go nowhere
    const root = document.createElement("div");
    app.replaceChildren(root);
    const inst = typeof page.create === "function" ? page.create(...args) : page;
    state.page = inst;
    document.title = `bigmap · ${path.split("/")[2] || "dashboard"}`;
    await inst.render(root, ...args);
  } catch (e) {
    if (state.current !== token0) return;
    if (e instanceof ApiError && e.status === 401) return;
    app.innerHTML = `<div class="panel"><h1>${e instanceof ApiError && e.status === 404 ? "Not found" : "Error"}</h1><p class="error">${esc(e.message || e)}</p></div>`;
  }
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-link]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  const href = a.getAttribute("href") || a.getAttribute("xlink:href");
  if (!href || !href.startsWith("/ui/")) return;
  ev.preventDefault();
  navigate(href);
});
window.addEventListener("popstate", route);
route();
