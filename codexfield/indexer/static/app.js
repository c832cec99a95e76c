// CodexField catalog page: plain JS over the JSON API (no build step).
"use strict";
const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
let KINDS = {};
let offset = 0;
const LIMIT = 20;

function el(tag, attrs = {}, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(path) {
  const r = await fetch(path);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || body.detail || ("HTTP " + r.status));
  return body;
}

function capsuleHref(id) { return "#/capsule/" + encodeURIComponent(id); }
function short(id) { const p = id.split("/"); return "#" + p[p.length - 1]; }
function label(n, id) { return (n && n.name) ? n.name : (KINDS[n && n.kind] || "capsule") + " " + short(id); }

async function loadMeta() {
  const meta = await api("/api/meta");
  KINDS = meta.kinds;
  for (const [v, name] of Object.entries(KINDS)) $("kind").appendChild(el("option", { value: v }, name));
}

async function refreshStatus() {
  try {
    const s = await api("/api/status");
    $("status").textContent = s.chains.map((c) => `chain ${c.chain_id}: block ${c.indexed_block} (lag ${c.lag})`).join(" · ")
      + ` · ${s.capsules} capsules` + (s.retry_queue.length ? ` · ${s.retry_queue.length} manifests waiting` : "");
  } catch (e) { $("status").textContent = "status unavailable"; }
}

function searchParams() {
  const p = new URLSearchParams();
  for (const id of ["q", "kind", "max_price", "min_rating", "sort"]) if ($(id).value) p.set(id, $(id).value);
  for (const s of $("scope").value.split(",").map((x) => x.trim()).filter(Boolean)) p.append("scope", s);
  if ($("audited").checked) p.set("audited", "true");
  p.set("limit", LIMIT); p.set("offset", offset);
  return p;
}

async function runSearch() {
  $("search-error").hidden = true;
  let res;
  try { res = await api("/api/capsules?" + searchParams()); } catch (e) {
    $("search-error").textContent = e.message; $("search-error").hidden = false; $("results").replaceChildren(); return;
  }
  $("result-count").textContent = res.total_capped ? `${res.total}+ capsules` : `${res.total} capsule${res.total === 1 ? "" : "s"}`;
  const items = res.items.map((c) => {
    const li = el("li", { class: "result", "data-id": c.id });
    const a = el("a", { href: capsuleHref(c.id), class: "result-link" }, c.name || `${KINDS[c.kind]} ${short(c.id)}`);
    li.appendChild(a);
    if (c.moderation && c.moderation !== "ok") li.appendChild(el("span", { class: "tag " + c.moderation }, c.moderation));
    if (c.audits_valid) li.appendChild(el("span", { class: "tag" }, "audited"));
    const rating = c.rating_count ? `★ ${c.rating_avg.toFixed(1)} (${c.rating_count})` : "no ratings";
    li.appendChild(el("div", { class: "meta" },
      `${KINDS[c.kind]} · v${c.version} · score ${(c.score || 0).toFixed(1)} · ${rating} · ${c.calls || 0} calls`));
    if (c.description) li.appendChild(el("div", {}, c.description));
    return li;
  });
  $("results").replaceChildren(...items);
  $("prev").disabled = offset === 0;
  $("next").disabled = res.next_offset === null;
}

function drawLineage(lin, current) {
  const svg = $("lineage-graph");
  svg.replaceChildren();
  const layers = new Map();
  const put = (id, d) => { if (!layers.has(d)) layers.set(d, []); layers.get(d).push(id); };
  put(current, 0);
  for (const a of lin.ancestors) put(a.id, -a.depth);
  for (const d of lin.descendants) put(d.id, d.depth);
  const depths = [...layers.keys()].sort((x, y) => x - y);
  const W = 150, H = 34, GX = 30, GY = 60;
  const width = Math.max(...[...layers.values()].map((l) => l.length)) * (W + GX) + GX;
  const pos = {};
  depths.forEach((d, row) => {
    const ids = layers.get(d);
    const x0 = (width - ids.length * (W + GX) + GX) / 2;
    ids.forEach((id, i) => { pos[id] = { x: x0 + i * (W + GX), y: 20 + row * (H + GY) }; });
  });
  const height = 20 + depths.length * (H + GY);
  svg.setAttribute("viewBox", `0 0 ${Math.max(width, 400)} ${height}`);
  svg.setAttribute("height", height);
  for (const e of lin.edges) {
    const c = pos[e.child], p = pos[e.parent];
    if (!c || !p) continue;
    svg.appendChild(el("svg:line", { class: "edge", x1: c.x + W / 2, y1: c.y, x2: p.x + W / 2, y2: p.y + H,
      "data-child": e.child, "data-parent": e.parent }));
    svg.appendChild(el("svg:text", { x: (c.x + p.x) / 2 + W / 2 + 4, y: (c.y + p.y + H) / 2 }, (e.share_bps / 100) + "%"));
  }
  for (const [id, pt] of Object.entries(pos)) {
    const n = lin.nodes[id] || {};
    const mod = n.moderation && ["flagged", "disabled", "derivative_of_flagged"].includes(n.moderation);
    const g = el("svg:g", { class: "lnode" + (id === current ? " current" : "") + (mod ? " moderated" : ""), "data-id": id });
    g.appendChild(el("svg:rect", { x: pt.x, y: pt.y, width: W, height: H, rx: 6 }));
    g.appendChild(el("svg:text", { x: pt.x + 8, y: pt.y + 21 }, label(n, id).slice(0, 22)));
    g.addEventListener("click", () => { location.hash = capsuleHref(id); });
    svg.appendChild(g);
  }
}

function drawRoyalties(c) {
  const svg = $("royalty-graph");
  svg.replaceChildren();
  const inflow = c.royalty_flows.filter((f) => f.target === c.id);
  const outflow = c.royalty_flows.filter((f) => f.source === c.id);
  const rows = Math.max(inflow.length, outflow.length, 1);
  const height = 30 + rows * 40, width = 760, cx = width / 2;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", height);
  const max = Math.max(1, ...c.royalty_flows.map((f) => Number(f.amount)));
  const side = (flows, x, dir) => flows.forEach((f, i) => {
    const y = 30 + i * 40;
    const other = dir === "in" ? f.source : f.target;
    svg.appendChild(el("svg:line", { class: "edge flow", x1: x + (dir === "in" ? 170 : 0), y1: y, x2: cx + (dir === "in" ? -60 : 60), y2: height / 2,
      "stroke-width": 1 + 7 * Number(f.amount) / max, "data-amount": f.amount }));
    const t = el("svg:text", { x: x, y: y + 4, class: "flow-label" }, `${other.startsWith("eip155") && other.includes("erc721") ? short(other) : other.split(":").pop().slice(0, 10)} ${dir === "in" ? "→" : "←"} ${f.amount}`);
    svg.appendChild(t);
  });
  side(inflow, 10, "in");
  side(outflow, width - 180, "out");
  svg.appendChild(el("svg:rect", { x: cx - 60, y: height / 2 - 16, width: 120, height: 32, rx: 6, class: "flow-center", fill: "#3a5bbf" }));
  svg.appendChild(el("svg:text", { x: cx - 48, y: height / 2 + 4, fill: "#fff" }, "this capsule"));
  const body = $("royalty-table").querySelector("tbody");
  body.replaceChildren(...c.royalties.map((r) => {
    const tr = el("tr");
    for (const k of ["token", "vault", "claimable", "credited_total", "from_children_total", "to_parents_total", "claimed_total"])
      tr.appendChild(el("td", {}, k === "token" ? r[k].slice(0, 10) + "…" : r[k]));
    return tr;
  }));
}

async function showCapsule(id) {
  $("search-view").hidden = true; $("capsule-view").hidden = false;
  let c;
  try { c = await api("/api/capsules/" + id.split("/").map(encodeURIComponent).join("/")); } catch (e) {
    $("capsule-title").textContent = e.message; return;
  }
  $("capsule-title").textContent = (c.manifest && c.manifest.name) || `${KINDS[c.kind]} ${short(c.id)}`;
  const mod = c.score ? c.score.moderation : "ok";
  $("capsule-flags").replaceChildren(...(mod !== "ok" ? [el("span", { class: "tag " + mod }, mod)] : []));
  const facts = { id: c.id, kind: KINDS[c.kind], version: c.version, creator: c.creator_did, owner: c.owner,
    manifest: c.cid + (c.manifest ? ` (${c.manifest.status})` : ""),
    score: c.score ? c.score.score.toFixed(1) : "–", rating: c.rating.count ? `${c.rating.average.toFixed(2)} ★ (${c.rating.count})` : "none",
    usage: `${c.usage.calls} calls, ${c.usage.failures} failures, ${c.usage.mu} MU` };
  $("capsule-facts").replaceChildren(...Object.entries(facts).flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, String(v))]));
  drawLineage(c.lineage, c.id);
  drawRoyalties(c);
  $("terms").replaceChildren(...c.terms.map((t) => el("li", {}, `terms ${t.terms_id}: ${t.price_per_mu}/MU, upfront ${t.upfront_fee}, scopes ${t.scopes.join(", ")}${t.active ? "" : " (closed)"}`)));
  $("attestations").replaceChildren(...c.attestations.map((a) => el("li", {}, `${a.standard.slice(0, 10)}… ${a.passed ? "passed" : "failed"}${a.revoked ? " (revoked)" : ""}`)));
}

function route() {
  const h = location.hash;
  if (h.startsWith("#/capsule/")) return showCapsule(decodeURIComponent(h.slice("#/capsule/".length)));
  $("search-view").hidden = false; $("capsule-view").hidden = true;
  return runSearch();
}

$("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; if (location.hash.startsWith("#/capsule/")) location.hash = "#/"; else runSearch(); });
$("prev").addEventListener("click", () => { offset = Math.max(0, offset - LIMIT); runSearch(); });
$("next").addEventListener("click", () => { offset += LIMIT; runSearch(); });
window.addEventListener("hashchange", route);
loadMeta().then(() => { refreshStatus(); return route(); }).then(() => { document.body.dataset.ready = "1"; });
