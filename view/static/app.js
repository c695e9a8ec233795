// horizongym view: the page. Plain ES module, no framework, no build step, nothing fetched from outside.
// Routes live in the URL hash: #/ runs, #/run/RID, #/run/RID/episode/N, #/curves?runs=..., #/play.

const app = document.getElementById("app");
const PAGE_SIZE = 50;
const DEBOUNCE_MS = 300;
const FILTERS = ["env_id", "policy", "outcome", "success", "min_reward", "max_reward", "min_turns", "max_turns", "error", "branch"];
const DEFAULT_METRICS = ["reward_mean", "success_rate", "kl_ref", "approx_kl", "clip_fraction", "tokens_per_s", "eval.success_rate", "eval.reward_mean"];
const COLUMNS = [
  ["n", "#"], ["env_id", "env"], ["policy", "policy"], ["seed", "seed"], ["sample", "sample"], ["branch", "branch"],
  ["task_id", "task"], ["success", "success"], ["total_reward", "reward"], ["turns", "turns"], ["outcome", "outcome"],
  ["termination_reason", "ended by"], ["error", "error"], ["seconds", "seconds"], ["tokens", "tokens"],
];
const SERIES_COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

let renderToken = 0; // each route render takes a new token; async work of an older render is dropped
const lastRunHash = {}; // RID -> the run view's hash (filters, sort, page) last shown, for "back"

// ---------- small helpers ----------

/** Build an element: h("a", {href: "#/", class: "x"}, "text", child...). Text is never parsed as HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/** Replace an element's children (arrays flattened, null skipped: replaceChildren would print them). */
function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

let pending = 0;
async function api(path, body) {
  const loading = document.getElementById("loading");
  pending += 1;
  loading.hidden = false;
  try {
    const init = body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    if (!response.ok) {
      const line = data && data.error ? data.error : `${response.status} ${response.statusText} from ${path}`;
      throw new ApiError(line, response.status);
    }
    return data;
  } finally {
    pending -= 1;
    loading.hidden = pending === 0;
  }
}

function fmt(x, digits = 3) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x)) return String(x);
  return x.toFixed(digits);
}
const pct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`);
const signed = (x) => (x > 0 ? "+" : "") + fmt(x);
const counts = (obj) => Object.entries(obj || {}).sort().map(([k, v]) => `${k} ${v}`).join(", ");
const successMark = (v) => (v === true ? h("span", { class: "ok", title: "success" }, "✔") : v === false ? h("span", { class: "bad", title: "failure" }, "✘") : h("span", { class: "muted", title: "not judged" }, "·"));

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function errorBox(err) {
  return h("p", { class: "error-line", role: "alert" }, err instanceof Error ? err.message : String(err));
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query || "") };
}

/** Change the hash without a re-render (the view already shows that state). */
function setHashQuietly(hash) {
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

/** Put nodes into the page (null and false are skipped; Element.append would print them). */
function show(...children) { append(app, children); }

function pre(text, cls) { return h("pre", { class: cls || null }, text ?? ""); }

function prettyJson(value) {
  if (typeof value === "string") {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch { return value; }
  }
  return JSON.stringify(value, null, 2);
}

// ---------- router ----------

async function route() {
  const token = ++renderToken;
  const { parts, params } = parseHash();
  const view = parts[0] || "runs";
  for (const a of document.querySelectorAll(".topbar nav a")) {
    a.classList.toggle("active", a.dataset.view === (view === "run" ? "runs" : view));
  }
  fill(app);
  const alive = () => token === renderToken;
  try {
    if (view === "runs") await runsView(alive);
    else if (view === "run" && parts.length === 2) await runView(parts[1], params, alive);
    else if (view === "run" && parts.length === 4 && parts[2] === "episode") await episodeView(parts[1], Number(parts[3]), alive);
    else if (view === "curves") await curvesView(params, alive);
    else if (view === "play") await playView(params, alive);
    else show(errorBox(`no page at #${parts.join("/")}; go to the runs list`), h("a", { href: "#/" }, "runs"));
  } catch (err) {
    if (alive()) show(errorBox(err));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
if (document.readyState !== "loading") route();

// ---------- runs list ----------

async function runsView(alive) {
  const { runs } = await api("api/runs");
  if (!alive()) return;
  const withMetrics = runs.filter((r) => r.metrics).map((r) => r.id);
  show(
    h("h1", {}, "Runs"),
    h("table", { id: "runs-table", class: "grid" },
      h("thead", {}, h("tr", {}, ["id", "name", "kind", "episodes", "curves", "path"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, runs.map((r) => h("tr", { class: "run-row", dataset: { run: r.id } },
        h("td", {}, r.id),
        h("td", {}, h("a", { href: `#/run/${r.id}` }, r.name)),
        h("td", {}, r.kind),
        h("td", { class: "num" }, r.episodes),
        h("td", {}, r.metrics ? h("a", { href: `#/curves?runs=${r.id}` }, "curves") : h("span", { class: "muted" }, "–")),
        h("td", { class: "path" }, r.path),
      ))),
    ),
    runs.length ? null : h("p", { class: "muted" }, "No runs: start the app with a run file or a trainer's out dir."),
    withMetrics.length > 1 ? h("p", {}, h("a", { href: `#/curves?runs=${withMetrics.slice(0, 2).join(",")}` }, "compare the training curves of the first two runs")) : null,
  );
}

// ---------- one run: summary + episode table ----------

function runState(params) {
  const state = { sort: params.get("sort") || "n", order: params.get("order") === "desc" ? "desc" : "asc", offset: Math.max(0, Number(params.get("offset")) || 0) };
  for (const f of FILTERS) state[f] = params.get(f) || "";
  return state;
}

function runHash(rid, state) {
  const q = new URLSearchParams();
  for (const f of FILTERS) if (state[f] !== "") q.set(f, state[f]);
  if (state.sort !== "n") q.set("sort", state.sort);
  if (state.order !== "asc") q.set("order", state.order);
  if (state.offset) q.set("offset", String(state.offset));
  const qs = q.toString();
  return `#/run/${rid}${qs ? "?" + qs : ""}`;
}

function summaryBlock(summary) {
  const cards = summary.rows.map((r) => h("div", { class: "summary-row" },
    h("div", { class: "summary-title" }, h("strong", {}, r.env_id), " · ", r.policy),
    h("dl", { class: "stats" },
      stat("episodes", r.episodes, "summary-episodes"),
      stat("success", pct(r.success_rate), "summary-success"),
      stat("reward", `${fmt(r.mean_reward)} ± ${fmt(r.std_reward)}`, "summary-reward"),
      stat("turns", fmt(r.mean_turns, 2)),
      stat("tokens", fmt(r.mean_tokens, 1)),
      stat("step errors", r.step_errors),
      stat("episode errors", r.episode_errors),
      stat("outcome", counts(r.outcomes)),
      stat("ended by", counts(r.reasons)),
    )));
  return h("section", { class: "summary", "aria-label": "summary" },
    cards,
    summary.trees ? h("p", { class: "trees" }, summary.trees) : null,
    summary.failures ? h("details", { class: "failures" }, h("summary", {}, "failures"), pre(summary.failures)) : null,
    h("details", {}, h("summary", {}, "as `show` prints it"), pre(summary.table, "table-text")),
  );
}

function stat(label, value, cls) {
  return h("div", { class: cls || null }, h("dt", {}, label), h("dd", {}, value));
}

async function runView(rid, params, alive) {
  const state = runState(params);
  const [runs, summary] = await Promise.all([api("api/runs"), api(`api/runs/${rid}/summary`)]);
  if (!alive()) return;
  const run = runs.runs.find((r) => r.id === rid);
  if (!run) throw new Error(`no run ${rid}; pick one from the runs list`);
  lastRunHash[rid] = runHash(rid, state);

  const input = (name, label, attrs) => h("label", { for: `filter-${name}` }, label,
    h("input", { id: `filter-${name}`, name, value: state[name], autocomplete: "off", ...attrs }));
  const select = (name, label, options) => h("label", { for: `filter-${name}` }, label,
    h("select", { id: `filter-${name}`, name }, options.map(([v, text]) => h("option", { value: v, selected: state[name] === v }, text))));

  const facetSelect = (name, label) => select(name, label, [["", "any"]]);
  const form = h("form", { class: "filters", id: "filters", onsubmit: (e) => e.preventDefault() },
    facetSelect("env_id", "env"),
    facetSelect("policy", "policy"),
    facetSelect("outcome", "outcome"),
    select("success", "success", [["", "any"], ["true", "yes"], ["false", "no"], ["none", "not judged"]]),
    select("branch", "branch", [["", "any"], ["trunk", "trunks"], ["branch", "branches"]]),
    input("min_reward", "reward ≥", { type: "number", step: "any", class: "short" }),
    input("max_reward", "reward ≤", { type: "number", step: "any", class: "short" }),
    input("min_turns", "turns ≥", { type: "number", step: "1", min: "0", class: "short" }),
    input("max_turns", "turns ≤", { type: "number", step: "1", min: "0", class: "short" }),
    input("error", "error text", { type: "search", placeholder: "substring" }),
    h("button", { type: "button", id: "filter-clear", onclick: () => { for (const f of FILTERS) state[f] = ""; for (const el of form.elements) if (el.name) el.value = ""; changed(); } }, "clear"),
  );
  const total = h("span", { id: "episode-total" }, "…");
  const range = h("span", { id: "pager-range" });
  const prev = h("button", { type: "button", id: "pager-prev", onclick: () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); load(); } }, "← prev");
  const next = h("button", { type: "button", id: "pager-next", onclick: () => { state.offset += PAGE_SIZE; load(); } }, "next →");
  const headRow = h("tr", {}, COLUMNS.map(([key, label]) => h("th", { scope: "col", class: "sortable", dataset: { key }, "aria-sort": "none" },
    h("button", { type: "button", class: "sort-button", onclick: () => sortBy(key) }, label, h("span", { class: "sort-mark" })))));
  const body = h("tbody");
  const table = h("table", { id: "episodes-table", class: "grid episodes" }, h("thead", {}, headRow), body);
  const message = h("div", { class: "table-message" });

  show(
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "runs"), " / ", run.name),
    h("h1", {}, run.name, " ", h("span", { class: "muted small" }, run.path)),
    summaryBlock(summary),
    run.metrics ? h("p", {}, h("a", { href: `#/curves?runs=${rid}` }, "training curves of this run")) : null,
    h("h2", {}, "Episodes ", h("span", { class: "muted small" }, total, " matching")),
    form,
    h("div", { class: "pager" }, prev, range, next),
    message,
    h("div", { class: "table-wrap" }, table),
  );

  let facetsFilled = false;
  let loadToken = 0;
  async function load() {
    const mine = ++loadToken;
    const hash = runHash(rid, state);
    lastRunHash[rid] = hash;
    setHashQuietly(hash);
    const q = new URLSearchParams();
    for (const f of FILTERS) if (state[f] !== "") q.set(f, state[f]);
    q.set("sort", state.sort); q.set("order", state.order); q.set("offset", String(state.offset)); q.set("limit", String(PAGE_SIZE));
    let data;
    try {
      data = await api(`api/runs/${rid}/episodes?${q}`);
    } catch (err) {
      if (mine !== loadToken || !alive()) return;
      fill(message, errorBox(err));
      return;
    }
    if (mine !== loadToken || !alive()) return;
    fill(message);
    if (!facetsFilled) {
      facetsFilled = true;
      for (const name of ["env_id", "policy", "outcome"]) {
        const el = document.getElementById(`filter-${name}`);
        const values = (data.facets && data.facets[name]) || [];
        if (state[name] && !values.includes(state[name])) values.push(state[name]);
        fill(el, h("option", { value: "" }, "any"), values.map((v) => h("option", { value: v, selected: state[name] === v }, v)));
      }
    }
    total.textContent = String(data.total);
    const first = data.total ? data.offset + 1 : 0;
    const last = Math.min(data.offset + data.episodes.length, data.total);
    range.textContent = data.total ? `${first}–${last} of ${data.total}` : "none of 0";
    prev.disabled = data.offset <= 0;
    next.disabled = data.offset + data.episodes.length >= data.total;
    if (data.total && !data.episodes.length && state.offset > 0) { // a page past the end (a stale URL): go to the last page
      state.offset = Math.max(0, Math.floor((data.total - 1) / PAGE_SIZE) * PAGE_SIZE);
      load();
      return;
    }
    for (const th of headRow.children) {
      const on = th.dataset.key === state.sort;
      th.setAttribute("aria-sort", on ? (state.order === "asc" ? "ascending" : "descending") : "none");
      th.classList.toggle("sorted", on);
      th.querySelector(".sort-mark").textContent = on ? (state.order === "asc" ? " ▲" : " ▼") : "";
    }
    fill(body, ...data.episodes.map((row) => episodeRow(rid, row)));
    if (!data.episodes.length) body.append(h("tr", {}, h("td", { colspan: COLUMNS.length, class: "muted" }, "no episode matches these filters")));
  }

  function sortBy(key) {
    if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
    else { state.sort = key; state.order = "asc"; }
    state.offset = 0;
    load();
  }
  function changed() { state.offset = 0; load(); }
  const typed = debounce(changed, DEBOUNCE_MS);
  form.addEventListener("input", (e) => {
    const el = e.target;
    if (!el.name) return;
    state[el.name] = el.value.trim();
    if (el.tagName === "SELECT") changed(); else typed();
  });
  form.addEventListener("change", (e) => { // selects fire both in some browsers: keep one load
    const el = e.target;
    if (el.tagName === "SELECT" && state[el.name] !== el.value) { state[el.name] = el.value; changed(); }
  });
  await load();
}

function episodeRow(rid, row) {
  const href = `#/run/${rid}/episode/${row.n}`;
  const cells = {
    n: h("a", { href }, row.n),
    success: successMark(row.success),
    total_reward: fmt(row.total_reward),
    seconds: fmt(row.seconds, 2),
    branch: row.branch ? `${row.branch} ← ${row.parent_branch}@${row.fork_turn}` : "0",
    error: row.error ? h("span", { class: "bad", title: row.error }, row.error.length > 60 ? row.error.slice(0, 57) + "…" : row.error) : "",
  };
  return h("tr", { class: "episode-row", dataset: { n: row.n }, tabindex: "0",
    onclick: (e) => { if (!e.target.closest("a")) location.hash = href; },
    onkeydown: (e) => { if (e.key === "Enter") location.hash = href; } },
  COLUMNS.map(([key]) => h("td", { class: `col-${key}` }, key in cells ? cells[key] : fmt(row[key]))));
}

// ---------- one episode ----------

/** Split the conversation into the prompt (before the first assistant message) and one group per assistant turn. */
function groupMessages(messages) {
  const prelude = [];
  const groups = [];
  for (const m of messages || []) {
    if (m.role === "assistant") groups.push([m]);
    else if (groups.length) groups[groups.length - 1].push(m);
    else prelude.push(m);
  }
  return { prelude, groups };
}

function messageBlock(m, extraClass) {
  const body = [];
  if (m.content !== null && m.content !== undefined && m.content !== "") body.push(pre(typeof m.content === "string" ? m.content : prettyJson(m.content)));
  for (const call of m.tool_calls || []) {
    const fn = call.function || call;
    body.push(h("div", { class: "tool-call" }, h("span", { class: "tool-name" }, "→ ", fn.name), pre(prettyJson(fn.arguments), "json")));
  }
  const role = m.role || "?";
  return h("div", { class: `msg role-${role} ${extraClass || ""}` },
    h("div", { class: "role" }, role, m.name ? ` (${m.name})` : "", m.fresh_context ? " · fresh context" : ""), body);
}

function logprobColor(lp) {
  if (lp === null || lp === undefined) return "transparent";
  const p = Math.exp(lp); // probability 0..1: red (unlikely) through yellow to green (likely)
  const hue = Math.round(120 * p);
  return `hsl(${hue} 75% 82%)`;
}

function tokenSpans(tokens) {
  return h("div", { class: "tokens", "aria-label": "completion tokens coloured by log-probability" },
    tokens.map((t) => h("span", {
      class: "token",
      style: `background:${logprobColor(t.logprob)}`,
      dataset: { id: t.id, logprob: t.logprob === null ? "" : t.logprob },
      title: `id ${t.id} · ${JSON.stringify(t.text)} · logprob ${t.logprob === null ? "–" : t.logprob.toFixed(4)}${t.logprob === null ? "" : ` (p ${Math.exp(t.logprob).toFixed(3)})`}`,
    }, t.text.replace(/\n/g, "↵\n"))));
}

function tokenLegend() {
  const stops = [-6, -3, -1.5, -0.5, -0.1, 0];
  return h("div", { class: "legend token-legend" }, "token log-prob: ",
    stops.map((lp) => h("span", { class: "legend-swatch", style: `background:${logprobColor(lp)}` }, `${lp} (p ${Math.exp(lp).toFixed(2)})`)));
}

function advantageCell(value, scale) {
  if (value === null || value === undefined) return h("div", { class: "advantage none", title: "no advantage recorded", dataset: { advantage: "" } }, "–");
  const strength = Math.min(1, Math.abs(value) / (scale || 1));
  const color = value >= 0 ? `rgba(37, 99, 235, ${0.15 + 0.85 * strength})` : `rgba(220, 38, 38, ${0.15 + 0.85 * strength})`;
  return h("div", { class: `advantage ${value >= 0 ? "positive" : "negative"}`, style: `background:${color}`, title: `advantage ${value}`, dataset: { advantage: value } },
    h("span", { class: "advantage-value" }, signed(value)));
}

function rewardComponents(step) {
  const comps = Object.entries(step.reward_components || {});
  return h("div", { class: "reward-components" },
    h("span", { class: "reward-total" }, "reward ", h("strong", {}, signed(step.reward || 0))),
    comps.length ? comps.map(([k, v]) => h("span", { class: `component ${v > 0 ? "pos" : v < 0 ? "neg" : ""}`, dataset: { name: k } }, `${k} ${signed(v)}`)) : h("span", { class: "muted" }, " no components"));
}

function diffBlock(diff) {
  return h("pre", { class: "swe-diff" }, diff.split("\n").map((line) => {
    const cls = line.startsWith("+++") || line.startsWith("---") ? "diff-file" : line.startsWith("+") ? "diff-add" : line.startsWith("-") ? "diff-del" : line.startsWith("@@") ? "diff-hunk" : "diff-ctx";
    return h("span", { class: cls }, line + "\n");
  }));
}

function kernelTable(rows) {
  const keys = ["turn", "status", "speedup", "compile_s", "runtime_ms", "reference_ms"];
  for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  return h("table", { class: "grid kernel-table" },
    h("thead", {}, h("tr", {}, keys.map((k) => h("th", { scope: "col" }, k)))),
    h("tbody", {}, rows.map((r) => h("tr", { class: `status-${r.status}` }, keys.map((k) => h("td", { class: typeof r[k] === "number" ? "num" : null }, typeof r[k] === "object" && r[k] !== null ? JSON.stringify(r[k]) : fmt(r[k])))))));
}

function searchBlock(searches) {
  return h("div", { class: "search-judged" }, searches.map((q) => h("div", { class: "search-query", dataset: { turn: q.turn } },
    h("div", {}, h("span", { class: "muted" }, `turn ${q.turn} · search `), h("code", {}, q.query),
      " · verdict: ", q.verdict === null || q.verdict === undefined ? h("span", { class: "muted" }, "not judged") : h("strong", { class: q.verdict ? "ok" : "bad" }, q.verdict ? "useful" : "not useful")),
    h("ol", {}, q.docs.map((d) => h("li", { class: d.gold ? "doc gold" : "doc" }, d.title, " ", h("span", { class: "muted" }, `(${d.id})`), d.gold ? h("span", { class: "gold-mark", title: "gold document" }, " ★ gold") : null))))));
}

async function findParent(rid, row) {
  // The parent is the episode of the same seed and sample whose branch is this one's parent_branch.
  // (a play --from branch has policy "human", so the policy is no filter here)
  const q = new URLSearchParams({ env_id: row.env_id, seed: String(row.seed), sample: String(row.sample), limit: "500" });
  const page = await api(`api/runs/${rid}/episodes?${q}`);
  const hit = page.episodes.find((e) => e.branch === row.parent_branch);
  return hit ? hit.n : null;
}

async function episodeView(rid, n, alive) {
  const data = await api(`api/runs/${rid}/episodes/${n}`);
  if (!alive()) return;
  const { row, episode, turns, extras } = data;
  const back = lastRunHash[rid] || `#/run/${rid}`;
  const { prelude, groups } = groupMessages(episode.messages);
  // An episode whose last step raised (or ran past its time limit) stores that action's assistant message
  // with no step: one group more than steps, shown after the turns as the turn that did not finish.
  const unfinished = episode.unfinished_action !== null && episode.unfinished_action !== undefined;
  const extraGroup = unfinished && groups.length === episode.steps.length + 1;
  const byTurn = groups.length === episode.steps.length || extraGroup; // messages line up with the steps
  const advantages = turns.map((t) => t.advantage).filter((a) => a !== null && a !== undefined);
  const advScale = Math.max(1e-9, ...advantages.map(Math.abs));
  const anyTokens = turns.some((t) => t.tokens && t.tokens.length);

  const header = h("section", { class: "episode-head" },
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "runs"), " / ", h("a", { href: back, id: "back-to-run" }, rid), " / episode ", n),
    h("h1", {}, successMark(row.success), ` Episode ${n} `, h("span", { class: "muted small" }, `${row.env_id} · task ${row.task_id ?? "–"}`)),
    h("nav", { class: "episode-nav" },
      n > 0 ? h("a", { href: `#/run/${rid}/episode/${n - 1}`, id: "episode-prev" }, `← #${n - 1}`) : null,
      h("a", { href: `#/run/${rid}/episode/${n + 1}`, id: "episode-next" }, `#${n + 1} →`)),
    h("dl", { class: "stats" },
      stat("policy", row.policy), stat("seed", row.seed), stat("sample", row.sample),
      stat("reward", fmt(row.total_reward)), stat("turns", row.turns), stat("outcome", row.outcome ?? "–"),
      stat("seconds", fmt(row.seconds, 2)), stat("tokens", row.tokens)),
    h("div", { class: `termination outcome-${row.outcome}` },
      h("strong", {}, "ended by "), episode.termination_reason ?? "–",
      episode.termination_detail ? [" — ", h("span", { class: "termination-detail" }, episode.termination_detail)] : null,
      episode.error ? h("pre", { class: "episode-error bad" }, episode.error) : null,
      episode.attempts && episode.attempts.length ? h("div", { class: "muted" }, `${episode.attempts.length} earlier attempt(s) failed: `, episode.attempts.map((a) => `${a.termination_reason}${a.detail ? " (" + a.detail + ")" : ""}`).join("; ")) : null),
  );
  if (row.branch) {
    const parentLink = h("a", { href: "#", class: "parent-link", onclick: async (e) => {
      e.preventDefault();
      parentLink.textContent = "finding the parent…";
      try {
        const parent = await findParent(rid, row);
        if (parent === null) parentLink.textContent = "parent not in this file";
        else location.hash = `#/run/${rid}/episode/${parent}`;
      } catch (err) { parentLink.textContent = err.message; }
    } }, `branch ${row.parent_branch} of seed ${row.seed}, sample ${row.sample}`);
    append(header, [h("p", { class: "branch-info" }, `Branch ${row.branch}: forked from `, parentLink, ` after turn ${row.fork_turn}; ${row.fork_turn === 1 ? "turn 1 is" : `turns 1–${row.fork_turn} are`} the parent's.`)]);
  }

  const sections = [header];
  if (anyTokens) sections.push(tokenLegend());
  if (advantages.length) sections.push(h("p", { class: "legend" }, "advantage strip: ", advantageCell(advScale, advScale), " positive ", advantageCell(-advScale, advScale), " negative (per turn, the value the trainer credited; hover for it)"));
  if (extras && extras.swe_diff) sections.push(h("section", { class: "extra" }, h("h2", {}, "Diff"), diffBlock(extras.swe_diff)));
  if (extras && extras.kernel && extras.kernel.length) sections.push(h("section", { class: "extra" }, h("h2", {}, "Kernel builds and timings"), h("div", { class: "scroll-x" }, kernelTable(extras.kernel))));
  if (extras && extras.search && extras.search.length) sections.push(h("section", { class: "extra" }, h("h2", {}, "Judged documents"), searchBlock(extras.search)));

  const prompt = byTurn ? prelude : (episode.messages || []).filter((m) => m.role === "system").concat((episode.messages || []).filter((m) => m.role !== "system").slice(0, 1));
  sections.push(h("section", { class: "prelude" }, h("h2", {}, "Prompt"), prompt.map((m) => messageBlock(m))));

  const turnBlocks = episode.steps.map((step, i) => {
    const t = turns[i] || {};
    const shared = row.branch && step.turn <= row.fork_turn;
    const conversation = byTurn
      ? groups[i].map((m) => messageBlock(m))
      : [messageBlock({ role: "assistant", content: step.action }), messageBlock({ role: "observation", content: step.observation })];
    const callsInMessages = byTurn && groups[i].some((m) => m.tool_calls && m.tool_calls.length);
    const calls = callsInMessages ? [] : (step.tool_calls || []).map((c) => h("div", { class: "tool-call" }, h("span", { class: "tool-name" }, "→ ", c.name), pre(prettyJson(c.arguments), "json")));
    const results = (step.tool_results || []).filter((r) => r.error).map((r) => h("div", { class: "tool-result bad" }, `${r.name}: ${r.error}`));
    return h("article", { class: `turn${shared ? " shared" : ""}`, dataset: { turn: step.turn } },
      advantages.length ? advantageCell(t.advantage, advScale) : null,
      h("div", { class: "turn-body" },
        h("header", { class: "turn-head" },
          h("h3", {}, `Turn ${step.turn}`),
          shared ? h("span", { class: "muted" }, "shared with the parent") : null,
          rewardComponents(step),
          h("span", { class: "timings muted" }, `policy ${fmt(step.policy_seconds, 3)} s · env ${fmt(step.env_seconds, 3)} s`),
          h("span", { class: "token-counts muted" }, `prompt ${t.prompt_tokens ?? "–"} · completion ${t.completion_tokens ?? "–"} tokens`),
          h("a", { class: "play-from-here button", href: `#/play?run=${rid}&episode=${n}&turn=${step.turn - 1}`, title: `replay turns 1–${step.turn - 1}, then play turn ${step.turn} yourself` }, "▶ play from here"),
        ),
        step.error ? h("p", { class: "step-error bad" }, step.error) : null,
        conversation,
        calls.length ? h("div", { class: "tool-calls" }, h("div", { class: "label" }, "tool calls"), calls) : null,
        results,
        t.tokens && t.tokens.length ? tokenSpans(t.tokens) : null,
        t.team_svg ? teamGraphBlock(t.team_svg, step.policy_trace) : null,
        step.info && Object.keys(step.info).length ? h("details", { class: "step-info" }, h("summary", {}, "info"), pre(prettyJson(step.info), "json")) : null,
      ));
  });
  if (unfinished) {
    const turn = episode.steps.length + 1;
    const said = extraGroup ? groups[groups.length - 1].map((m) => messageBlock(m)) : [messageBlock({ role: "assistant", content: episode.unfinished_action })];
    turnBlocks.push(h("article", { class: "turn unfinished", dataset: { turn } },
      h("div", { class: "turn-body" },
        h("header", { class: "turn-head" }, h("h3", {}, `Turn ${turn}`), h("span", { class: "bad" }, `not finished: ${episode.termination_reason ?? "the step"} ended the episode`)),
        said,
        episode.error ? h("p", { class: "step-error bad" }, episode.error.split("\n")[0]) : null)));
  }
  sections.push(h("section", { class: "turns" }, h("h2", {}, `Turns (${episode.steps.length}${unfinished ? " and 1 unfinished" : ""})`), turnBlocks));
  show(...sections);
}

/** A team turn's picture (the server's SVG of who spoke and who read whom), collapsed under the turn. */
function teamGraphBlock(svgText, trace) {
  const parsed = new DOMParser().parseFromString(svgText, "image/svg+xml").documentElement;
  const picture = parsed.namespaceURI === SVG_NS ? document.importNode(parsed, true) : h("p", { class: "bad" }, "the team picture could not be read");
  const tokens = trace && trace.tokens ? ` · ${trace.tokens.prompt} prompt + ${trace.tokens.completion} completion tokens in ${trace.tokens.calls} calls` : "";
  const decision = trace && trace.decision ? ` · decided by ${trace.decision.kind}${trace.decision.winner ? " (" + trace.decision.winner + ")" : ""}` : "";
  return h("details", { class: "team-graph" }, h("summary", {}, `team ${trace ? trace.team : ""}: graph of this turn${decision}${tokens}`), h("div", { class: "scroll-x" }, picture));
}

// ---------- training curves ----------

function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) { const pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw) || raw;
  const start = Math.floor(lo / step) * step;
  const ticks = [];
  for (let v = start; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < hi) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

function tickLabel(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/**
 * A line chart as inline SVG: series = [{name, color, points: [[x, y], ...]}].
 * Axes with ticks and labels, a legend, and a hover line that reads out each series' value at the nearest x.
 */
function lineChart({ title, series, xLabel = "step", width = 520, height = 260, yDomain = null }) {
  const m = { top: 28, right: 16, bottom: 38, left: 58 };
  const pts = series.flatMap((sr) => sr.points);
  const wrap = h("figure", { class: "chart" });
  if (!pts.length) { wrap.append(h("figcaption", {}, title), h("p", { class: "muted" }, "no values")); return wrap; }
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs), 6);
  const yt = niceTicks(...(yDomain || [Math.min(...ys), Math.max(...ys)]), 5);
  const [x0, x1, y0, y1] = [xt[0], xt[xt.length - 1], yt[0], yt[yt.length - 1]];
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const X = (x) => m.left + ((x - x0) / (x1 - x0 || 1)) * pw;
  const Y = (y) => m.top + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": title, class: "chart-svg" },
    s("title", {}, title),
    s("text", { x: m.left, y: 16, class: "chart-title" }, title),
    yt.map((v) => s("g", {}, s("line", { x1: m.left, x2: m.left + pw, y1: Y(v), y2: Y(v), class: "grid-line" }),
      s("text", { x: m.left - 6, y: Y(v) + 4, class: "tick", "text-anchor": "end" }, tickLabel(v)))),
    xt.map((v) => s("g", {}, s("line", { x1: X(v), x2: X(v), y1: m.top + ph, y2: m.top + ph + 4, class: "axis" }),
      s("text", { x: X(v), y: m.top + ph + 16, class: "tick", "text-anchor": "middle" }, tickLabel(v)))),
    s("line", { x1: m.left, x2: m.left + pw, y1: m.top + ph, y2: m.top + ph, class: "axis" }),
    s("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ph, class: "axis" }),
    s("text", { x: m.left + pw / 2, y: height - 4, class: "axis-label", "text-anchor": "middle" }, xLabel),
    series.map((sr) => s("g", { class: "series", "data-name": sr.name },
      s("polyline", { points: sr.points.map((p) => `${X(p[0])},${Y(p[1])}`).join(" "), fill: "none", stroke: sr.color, "stroke-width": 2 }),
      sr.points.length <= 60 ? sr.points.map((p) => s("circle", { cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: sr.color }, s("title", {}, `${sr.name} · ${xLabel} ${p[0]}: ${p[1]}`))) : null)),
  );
  // hover readout
  const hoverLine = s("line", { y1: m.top, y2: m.top + ph, class: "hover-line", visibility: "hidden" });
  const hoverText = s("text", { x: m.left + pw, y: 16, class: "hover-text", "text-anchor": "end" });
  const overlay = s("rect", { x: m.left, y: m.top, width: pw, height: ph, fill: "transparent", class: "hover-area" });
  svg.append(hoverLine, hoverText, overlay);
  const allX = [...new Set(xs)].sort((a, b) => a - b);
  overlay.addEventListener("mousemove", (e) => {
    const box = svg.getBoundingClientRect();
    const px = ((e.clientX - box.left) / box.width) * width;
    const x = x0 + ((px - m.left) / pw) * (x1 - x0);
    const nearest = allX.reduce((best, v) => (Math.abs(v - x) < Math.abs(best - x) ? v : best), allX[0]);
    hoverLine.setAttribute("x1", X(nearest)); hoverLine.setAttribute("x2", X(nearest));
    hoverLine.setAttribute("visibility", "visible");
    const parts = series.map((sr) => { const p = sr.points.find((q) => q[0] === nearest); return p ? `${sr.name} ${tickLabel(p[1])}` : null; }).filter(Boolean);
    hoverText.textContent = `${xLabel} ${nearest}: ${parts.join(" · ")}`;
  });
  overlay.addEventListener("mouseleave", () => { hoverLine.setAttribute("visibility", "hidden"); hoverText.textContent = ""; });
  wrap.append(svg, h("figcaption", { class: "legend" }, series.map((sr) => h("span", { class: "legend-item" }, h("span", { class: "legend-line", style: `background:${sr.color}` }), sr.name))));
  return wrap;
}

/** A record's value at a metrics key: a top-level name, or a dotted path into nested objects (eval.success_rate). */
function metricValue(record, key) {
  if (key in record) return record[key];
  let value = record;
  for (const part of key.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = value[part];
  }
  return value;
}

function seriesOf(records, key) {
  const out = [];
  records.forEach((r, i) => {
    const v = metricValue(r, key);
    if (typeof v === "number" && Number.isFinite(v)) out.push([typeof r.step === "number" ? r.step : i + 1, v]);
  });
  return out;
}

async function curvesView(params, alive) {
  const { runs } = await api("api/runs");
  if (!alive()) return;
  const withMetrics = runs.filter((r) => r.metrics);
  let chosen = (params.get("runs") || "").split(",").filter((id) => withMetrics.some((r) => r.id === id));
  if (!chosen.length && withMetrics.length) chosen = withMetrics.slice(0, 2).map((r) => r.id);
  const mode = params.get("mode") === "overlay" ? "overlay" : "side";
  show(h("h1", {}, "Training curves"));
  if (!withMetrics.length) { show(h("p", { class: "muted" }, "No run here has a metrics.jsonl: open a trainer's out dir (horizongym view OUT_DIR).")); return; }
  const loaded = {};
  await Promise.all(chosen.map(async (id) => { loaded[id] = await api(`api/runs/${id}/metrics`); }));
  if (!alive()) return;
  const keys = [...new Set(chosen.flatMap((id) => loaded[id].keys))].sort();
  const defaults = keys.filter((k) => DEFAULT_METRICS.includes(k));
  const picked = params.has("metrics") ? params.get("metrics").split(",").filter((k) => keys.includes(k)) : defaults;

  const go = (next) => {
    const q = new URLSearchParams();
    q.set("runs", next.runs.join(","));
    if (next.mode === "overlay") q.set("mode", "overlay");
    q.set("metrics", next.metrics.join(","));
    location.hash = `#/curves?${q.toString().replace(/%2C/g, ",")}`;
  };
  const current = { runs: chosen, mode, metrics: picked };
  const nameOf = (id) => `${id} ${runs.find((r) => r.id === id).name}`;

  show(h("form", { class: "curve-controls", onsubmit: (e) => e.preventDefault() },
    h("fieldset", {}, h("legend", {}, "runs"), withMetrics.map((r) => h("label", {},
      h("input", { type: "checkbox", class: "curve-run", value: r.id, checked: chosen.includes(r.id),
        onchange: (e) => go({ ...current, runs: e.target.checked ? [...chosen, r.id] : chosen.filter((x) => x !== r.id) }) }), ` ${r.id} ${r.name}`))),
    h("fieldset", {}, h("legend", {}, "layout"),
      ["side", "overlay"].map((v) => h("label", {}, h("input", { type: "radio", name: "curve-mode", class: "curve-mode", value: v, checked: mode === v, onchange: () => go({ ...current, mode: v }) }), v === "side" ? " side by side" : " overlaid"))),
    h("fieldset", { class: "metric-picks" }, h("legend", {}, "metrics"), keys.map((k) => h("label", {},
      h("input", { type: "checkbox", class: "curve-metric", value: k, checked: picked.includes(k),
        onchange: (e) => go({ ...current, metrics: e.target.checked ? [...picked, k] : picked.filter((x) => x !== k) }) }), ` ${k}`))),
  ));

  const charts = h("div", { id: "curves", class: `curves mode-${mode}` });
  for (const key of picked) {
    const perRun = chosen.map((id, i) => ({ name: nameOf(id), color: SERIES_COLORS[i % SERIES_COLORS.length], points: seriesOf(loaded[id].records, key) }));
    if (mode === "overlay") charts.append(h("div", { class: "chart-row", dataset: { metric: key } }, lineChart({ title: key, series: perRun })));
    else {
      const ys = perRun.flatMap((sr) => sr.points.map((p) => p[1]));
      const domain = ys.length ? [Math.min(...ys), Math.max(...ys)] : null; // one y range, so the runs compare by eye
      charts.append(h("div", { class: "chart-row", dataset: { metric: key } }, perRun.map((sr) => lineChart({ title: `${key} · ${sr.name}`, series: [sr], yDomain: domain, width: chosen.length > 1 ? 460 : 620 }))));
    }
  }
  if (!picked.length) charts.append(h("p", { class: "muted" }, "Pick a metric."));
  show(charts);
}

// ---------- play ----------

/** The JSON-schema type of a property, with pydantic's `anyOf: [{type: X}, {type: "null"}]` reduced to X. */
function schemaType(prop) {
  if (prop.type) return Array.isArray(prop.type) ? prop.type.find((t) => t !== "null") : prop.type;
  for (const alt of prop.anyOf || prop.oneOf || []) if (alt.type && alt.type !== "null") return alt.type;
  return "string";
}

const MULTILINE = /^(content|old_str|new_str|file_text|patch|code|source|command|text|kernel)$/;

function argInputs(tool) {
  const params = (tool && tool.function && tool.function.parameters) || {};
  const required = new Set(params.required || []);
  return Object.entries(params.properties || {}).map(([name, prop]) => {
    const type = schemaType(prop);
    const id = `play-arg-${name}`;
    const common = { id, class: "play-arg", dataset: { name, type }, required: required.has(name), "aria-required": required.has(name) ? "true" : null };
    let field;
    if (prop.enum) field = h("select", common, required.has(name) ? null : h("option", { value: "" }, "–"), prop.enum.map((v) => h("option", { value: v }, v)));
    else if (type === "boolean") field = h("input", { ...common, type: "checkbox" });
    else if (type === "integer") field = h("input", { ...common, type: "number", step: "1" });
    else if (type === "number") field = h("input", { ...common, type: "number", step: "any" });
    else if (type === "array" || type === "object") field = h("textarea", { ...common, rows: 3, placeholder: type === "array" ? "[ … ] as JSON" : "{ … } as JSON" });
    else if (MULTILINE.test(name)) field = h("textarea", { ...common, rows: 4 });
    else field = h("input", { ...common, type: "text" });
    return h("div", { class: "arg-field" },
      h("label", { for: id }, name, required.has(name) ? h("span", { class: "required", title: "required" }, " *") : null, h("span", { class: "muted" }, ` ${type}`)),
      field,
      prop.description ? h("div", { class: "muted small" }, prop.description) : null);
  });
}

function collectArguments(container) {
  const args = {};
  for (const el of container.querySelectorAll(".play-arg")) {
    const name = el.dataset.name;
    const type = el.dataset.type;
    if (type === "boolean") { args[name] = el.checked; continue; }
    const raw = el.value;
    if (raw === "" && !el.required) continue;
    if (raw === "" && el.required) throw new Error(`argument ${name} is required: fill it in`);
    if (type === "integer") {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error(`argument ${name} must be an integer, not ${JSON.stringify(raw)}`);
      args[name] = Number.parseInt(raw, 10);
    } else if (type === "number") {
      const v = Number(raw);
      if (!Number.isFinite(v)) throw new Error(`argument ${name} must be a number, not ${JSON.stringify(raw)}`);
      args[name] = v;
    } else if (type === "array" || type === "object") {
      try { args[name] = JSON.parse(raw); } catch (err) { throw new Error(`argument ${name} is not JSON (${err.message}); write it as JSON`); }
    } else args[name] = raw;
  }
  return args;
}

function transcriptStep(step, replayed) {
  return h("article", { class: `play-turn${replayed ? " replayed" : ""}`, dataset: { turn: step.turn } },
    h("header", { class: "turn-head" }, h("h3", {}, `Turn ${step.turn}`), replayed ? h("span", { class: "muted" }, "replayed") : null, rewardComponents(step)),
    messageBlock({ role: "assistant", content: step.action }),
    step.error || step.info_error ? h("p", { class: "step-error bad" }, step.error || step.info_error) : null,
    messageBlock({ role: "observation", content: step.observation }));
}

async function playView(params, alive) {
  const fromRun = params.get("run");
  const fromEpisode = params.get("episode");
  const fromTurn = params.get("turn");
  show(h("h1", {}, "Play"));
  const status = h("div", { id: "play-status", role: "status", "aria-live": "polite" }, "not started");
  const envSelect = h("select", { id: "play-env", name: "env" }, h("option", { value: "" }, "loading envs…"));
  const seed = h("input", { id: "play-seed", name: "seed", type: "number", step: "1", value: "0" });
  const start = h("button", { id: "play-start", type: "submit" }, "start");
  const envDesc = h("p", { class: "muted small", id: "play-env-description" });
  const setup = h("form", { class: "play-setup", onsubmit: (e) => { e.preventDefault(); startNew(); } },
    h("label", { for: "play-env" }, "env ", envSelect), h("label", { for: "play-seed" }, "seed ", seed), start, envDesc);
  const observation = h("pre", { id: "play-observation", "aria-label": "observation" });
  const reward = h("div", { id: "play-reward", "aria-live": "polite" });
  const transcript = h("section", { id: "play-transcript", "aria-label": "transcript" });
  const toolSelect = h("select", { id: "play-tool", name: "tool" }, h("option", { value: "" }, "— free text —"));
  const argsBox = h("div", { id: "play-args" });
  const action = h("textarea", { id: "play-action", name: "action", rows: 5, placeholder: "your action (Ctrl/Cmd+Enter sends)" });
  const send = h("button", { id: "play-send", type: "submit" }, "send");
  const quit = h("button", { id: "play-quit", type: "button", class: "secondary" }, "quit");
  const actionForm = h("form", { class: "play-action", hidden: true, onsubmit: (e) => { e.preventDefault(); sendAction(); } },
    h("label", { for: "play-tool" }, "tool ", toolSelect), argsBox,
    h("label", { for: "play-action", class: "action-label" }, "action", action),
    h("div", { class: "buttons" }, send, quit));
  show(setup, status,
    h("div", { class: "play-grid" },
      h("div", {}, h("h2", {}, "Observation"), observation, reward, actionForm),
      h("div", {}, h("h2", {}, "Transcript"), transcript)));

  let session = null;
  let tools = [];
  let total = 0;
  let busy = false;

  function setStatus(...parts) { fill(status, ...parts.flat().map((p) => (p instanceof Node ? p : document.createTextNode(String(p))))); }

  function began(sess, note) {
    session = sess;
    tools = sess.tools || [];
    total = 0;
    observation.textContent = sess.observation;
    fill(toolSelect, h("option", { value: "" }, "— free text —"), tools.map((t) => h("option", { value: t.function.name }, t.function.name)));
    fill(argsBox);
    action.disabled = false;
    actionForm.hidden = false;
    send.disabled = false;
    quit.disabled = false;
    fill(reward);
    setStatus(`${note} · session ${sess.session} · ${sess.env_id} seed ${sess.seed} · turn ${sess.turn}`);
    action.focus();
  }

  async function startNew() {
    if (!envSelect.value) { setStatus(errorBox("pick an env first")); return; }
    fill(transcript);
    try {
      const sess = await api("api/play/new", { env_id: envSelect.value, seed: Number(seed.value) || 0, env_kwargs: {} });
      if (alive()) began(sess, "playing");
    } catch (err) { setStatus(errorBox(err)); }
  }

  async function sendAction() {
    if (!session || busy) return;
    let body;
    try {
      body = toolSelect.value ? { tool: toolSelect.value, arguments: collectArguments(argsBox) } : { action: action.value };
    } catch (err) { setStatus(errorBox(err)); return; }
    busy = true; send.disabled = true;
    try {
      const out = await api(`api/play/${session.session}/step`, body);
      if (!alive()) return;
      total = out.total_reward;
      const sent = body.tool ? `<tool_call>${JSON.stringify({ name: body.tool, arguments: body.arguments })}</tool_call>` : body.action;
      transcript.append(transcriptStep({ turn: out.turn, action: sent, observation: out.observation, reward: out.reward, reward_components: out.reward_components, info_error: out.info_error }, false));
      observation.textContent = out.observation;
      fill(reward, rewardComponents(out), h("span", { class: "running-total" }, " · total ", h("strong", { id: "play-total" }, fmt(out.total_reward))));
      action.value = "";
      for (const el of argsBox.querySelectorAll(".play-arg")) { if (el.type === "checkbox") el.checked = false; else el.value = ""; }
      const firstArg = argsBox.querySelector(".play-arg");
      (firstArg || action).focus();
      if (out.done) finished(out.saved, out.truncated ? "done (truncated)" : "done");
      else setStatus(`playing · turn ${out.turn} · total ${fmt(out.total_reward)}`);
    } catch (err) { setStatus(errorBox(err)); } finally { busy = false; if (session) send.disabled = false; }
  }

  function finished(saved, word) {
    session = null;
    action.disabled = true; send.disabled = true; quit.disabled = true;
    const parts = [h("strong", { class: "done-mark" }, word)];
    if (saved) {
      parts.push(" · saved to ", h("code", { class: "saved-path" }, saved.path), ` (episode ${saved.episode}${saved.branch ? `, branch ${saved.branch}` : ""}) · `,
        h("a", { href: `#/run/${saved.run}/episode/${saved.episode}`, id: "play-saved-link" }, "open the saved episode"));
    } else parts.push(" · nothing saved (no turn played)");
    setStatus(parts);
  }

  quit.addEventListener("click", async () => {
    if (!session) return;
    try { const out = await api(`api/play/${session.session}/quit`, {}); if (alive()) finished(out.saved, "done (quit)"); } catch (err) { setStatus(errorBox(err)); }
  });
  action.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); sendAction(); } });
  argsBox.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey)) { e.preventDefault(); sendAction(); } });
  toolSelect.addEventListener("change", () => {
    const tool = tools.find((t) => t.function.name === toolSelect.value);
    fill(argsBox, ...(tool ? [tool.function.description ? h("p", { class: "muted small" }, tool.function.description) : null, ...argInputs(tool)].filter(Boolean) : []));
    action.disabled = Boolean(tool);
    action.closest("label").hidden = Boolean(tool);
    const firstArg = argsBox.querySelector(".play-arg");
    if (firstArg) firstArg.focus();
  });

  if (fromRun !== null && fromEpisode !== null) {
    setup.hidden = true;
    setStatus(`replaying ${fromRun} episode ${fromEpisode} to turn ${fromTurn ?? 0}…`);
    try {
      const sess = await api("api/play/from", { run: fromRun, episode: Number(fromEpisode), turn: Number(fromTurn ?? 0) });
      if (!alive()) return;
      for (const step of sess.replayed || []) transcript.append(transcriptStep(step, true));
      began(sess, `playing on from ${fromRun} episode ${fromEpisode} after turn ${fromTurn ?? 0}`);
      app.querySelector("h1").append(" ", h("span", { class: "muted small" }, "from ", h("a", { href: `#/run/${fromRun}/episode/${fromEpisode}` }, `${fromRun} episode ${fromEpisode}`), ` turn ${fromTurn ?? 0}`));
    } catch (err) { if (alive()) setStatus(errorBox(err)); }
    return;
  }
  try {
    const { envs } = await api("api/envs");
    if (!alive()) return;
    fill(envSelect, ...envs.map((e) => h("option", { value: e.id, disabled: Boolean(e.error), title: e.error || e.description }, e.error ? `${e.id} (unavailable)` : e.id)));
    const firstUsable = envs.find((e) => !e.error);
    if (firstUsable) envSelect.value = firstUsable.id;
    const describe = () => { const e = envs.find((x) => x.id === envSelect.value); envDesc.textContent = e ? (e.error ? `cannot be built here: ${e.error}` : e.description) : ""; };
    envSelect.addEventListener("change", describe);
    describe();
  } catch (err) { setStatus(errorBox(err)); }
}
