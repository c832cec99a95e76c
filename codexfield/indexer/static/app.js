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

// Manifest text is attacker-controlled: it only ever enters the DOM through textContent (el),
// and links only for http(s):// and ipfs:// URIs or capsule ids; no innerHTML anywhere.
function shortAddr(a) { return a && a.length > 12 ? a.slice(0, 6) + "…" + a.slice(-4) : a; }
function safeLink(uri, base) {
  const s = String(uri);
  if (/^[0-9]+$/.test(s) && base) return el("a", { href: capsuleHref(base + s) }, "capsule #" + s);
  if (/^eip155:[0-9]+\/erc721:0x[0-9a-fA-F]{40}\/[0-9]+$/.test(s)) return el("a", { href: capsuleHref(s) }, s);
  if (/^(https?|ipfs):\/\/[^\s]+$/i.test(s)) return el("a", { href: s, rel: "noopener noreferrer nofollow", target: "_blank" }, s);
  return el("span", {}, s);
}
function tokenBadge(t) {
  if (!t || t.listed) return null;
  return el("span", { class: "tag unlisted", title: t.address },
    t.symbol ? `unlisted token ${shortAddr(t.address)}` : `unknown token ${shortAddr(t.address)}`);
}
function bytesText(n) {
  const v = Number(n); const u = ["B", "kB", "MB", "GB", "TB"]; let i = 0, x = v;
  while (x >= 1000 && i < u.length - 1) { x /= 1000; i++; }
  return (i ? x.toFixed(1) : String(v)) + " " + u[i];
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
      `${KINDS[c.kind]} · v${c.version} · score ${(c.score || 0).toFixed(1)} · ${rating} · ${c.calls || 0} calls`
      + (c.min_price_text ? ` · from ${c.min_price_text}` : "")));
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
    const t = el("svg:text", { x: x, y: y + 4, class: "flow-label" }, `${other.startsWith("eip155") && other.includes("erc721") ? short(other) : other.split(":").pop().slice(0, 10)} ${dir === "in" ? "→" : "←"} ${f.amount_text}`);
    svg.appendChild(t);
  });
  side(inflow, 10, "in");
  side(outflow, width - 180, "out");
  svg.appendChild(el("svg:rect", { x: cx - 60, y: height / 2 - 16, width: 120, height: 32, rx: 6, class: "flow-center", fill: "#3a5bbf" }));
  svg.appendChild(el("svg:text", { x: cx - 48, y: height / 2 + 4, fill: "#fff" }, "this capsule"));
  const body = $("royalty-table").querySelector("tbody");
  body.replaceChildren(...c.royalties.map((r) => {
    const tr = el("tr");
    const tok = el("td", { title: r.token }, r.token_info.symbol || shortAddr(r.token));
    const badge = tokenBadge(r.token_info);
    if (badge) tok.appendChild(badge);
    tr.appendChild(tok);
    for (const k of ["vault", "claimable", "credited_total", "from_children_total", "to_parents_total", "claimed_total"])
      tr.appendChild(el("td", { "data-raw": r[k] }, r[k + "_text"]));
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
  $("capsule-description").textContent = (c.manifest && c.manifest.description) || "";
  drawCard(c);
  const mod = c.score ? c.score.moderation : "ok";
  $("capsule-flags").replaceChildren(...(mod !== "ok" ? [el("span", { class: "tag " + mod }, mod)] : []));
  const facts = { id: c.id, kind: KINDS[c.kind], version: c.version, creator: c.creator_did, owner: c.owner,
    manifest: c.cid + (c.manifest ? ` (${c.manifest.status})` : ""),
    score: c.score ? c.score.score.toFixed(1) : "–", rating: c.rating.count ? `${c.rating.average.toFixed(2)} ★ (${c.rating.count})` : "none",
    usage: `${c.usage.calls} calls, ${c.usage.failures} failures, ${c.usage.mu} MU`,
    "paid to licence": c.usage.license_amount_text, "paid to nodes": c.usage.node_amount_text };
  $("capsule-facts").replaceChildren(...Object.entries(facts).flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, String(v))]));
  drawLineage(c.lineage, c.id);
  drawRoyalties(c);
  $("terms").replaceChildren(...c.terms.map((t) => {
    const li = el("li", { "data-terms-id": String(t.terms_id) });
    const head = el("div", {});
    head.appendChild(el("span", { class: "price" }, `terms ${t.terms_id}: ${t.price_per_mu_text} per MU`
      + (t.upfront_fee !== "0" ? `, upfront ${t.upfront_fee_text}` : "")));
    const badge = tokenBadge(t.token);
    if (badge) head.appendChild(badge);
    if (!t.active) head.appendChild(el("span", { class: "tag" }, "closed"));
    head.appendChild(el("span", { class: "muted" }, ` · ${t.credentials_issued} credentials · scopes ${t.scopes.join(", ") || "none"}`));
    li.appendChild(head);
    if (t.ldl) li.appendChild(el("pre", { class: "ldl" }, t.ldl));
    return li;
  }));
  $("attestations").replaceChildren(...c.attestations.map((a) => el("li", {}, `${a.standard.slice(0, 10)}… ${a.passed ? "passed" : "failed"}${a.revoked ? " (revoked)" : ""}`)));
}

const MODEL_FIELDS = [["task", "task"], ["architecture", "architecture"], ["parameters", "parameters"],
  ["language", "languages"], ["base_model", "base model"], ["training_data", "training data"], ["license", "license"]];
const DATASET_FIELDS = [["task", "task"], ["language", "languages"], ["records", "records"], ["size_bytes", "size"],
  ["format", "format"], ["sources", "sources"], ["personal_data", "personal data"], ["sensitive", "sensitive"],
  ["license", "license"]];
const MODEL_SECTIONS = [["intended_use", "Intended use"], ["out_of_scope_use", "Out-of-scope use"],
  ["limitations", "Limitations"], ["ethical_considerations", "Ethical considerations"]];
const DATASET_SECTIONS = [["source", "Source"], ["collection_process", "Collection process"],
  ["preprocessing", "Preprocessing"], ["intended_use", "Intended use"], ["limitations", "Limitations"]];

function drawCard(c) {
  const card = c.manifest && c.manifest.card;
  const tags = [];
  const chip = (k, v) => { const li = el("li", { "data-chip": k }); li.appendChild(el("span", { class: "k" }, k + " ")); li.appendChild(document.createTextNode(String(v))); tags.push(li); };
  chip("kind", KINDS[c.kind]);
  const body = card && (card.model_card || card.dataset_card);
  if (body && body.task) chip("task", body.task);
  if (body && body.language && body.language.length) chip("languages", body.language.join(", "));
  const spdx = (card && card.license && card.license.spdx) || (body && body.license);
  if (spdx) chip("license", spdx);
  if (card && card.version) chip("version", card.version);
  if (card && card.files) chip("files", `${card.files} (${bytesText(card.size_bytes)})`);
  $("card-tags").replaceChildren(...tags);
  const box = $("card");
  if (!body) { box.hidden = true; return; }
  box.hidden = false;
  const isModel = Boolean(card.model_card);
  $("card-title").textContent = isModel ? "Model card" : "Dataset card";
  const base = c.id.slice(0, c.id.lastIndexOf("/") + 1);
  const fields = [];
  for (const [k, name] of isModel ? MODEL_FIELDS : DATASET_FIELDS) {
    let v = body[k];
    if (v === null || v === undefined || (Array.isArray(v) && !v.length)) continue;
    const dd = el("dd", { "data-card": k });
    if (k === "base_model" || k === "training_data" || k === "sources") {
      (Array.isArray(v) ? v : [v]).forEach((x, i) => { if (i) dd.appendChild(document.createTextNode(", ")); dd.appendChild(safeLink(x, base)); });
    } else if (k === "size_bytes") dd.textContent = bytesText(v);
    else if (typeof v === "boolean") dd.textContent = v ? "yes" : "no";
    else if (Array.isArray(v)) dd.textContent = v.join(", ");
    else dd.textContent = typeof v === "number" ? v.toLocaleString("en") : String(v);
    fields.push(el("dt", {}, name), dd);
  }
  for (const [k, v] of Object.entries(body.extensions || {})) fields.push(el("dt", {}, k), el("dd", { "data-card": k }, v));
  $("card-fields").replaceChildren(...fields);
  const sections = [];
  for (const [k, name] of isModel ? MODEL_SECTIONS : DATASET_SECTIONS) {
    if (!body[k]) continue;
    const sec = el("section", { class: "card-section", "data-card": k });
    sec.appendChild(el("h3", {}, name));
    sec.appendChild(el("p", {}, body[k]));
    sections.push(sec);
  }
  $("card-sections").replaceChildren(...sections);
  const metrics = (isModel && body.metrics) || [];
  $("card-metrics").hidden = $("card-metrics-title").hidden = !metrics.length;
  $("card-metrics").querySelector("tbody").replaceChildren(...metrics.map((m) => {
    const tr = el("tr", { "data-metric": m.name });
    for (const v of [m.name, m.value, m.dataset || "", m.split || ""]) tr.appendChild(el("td", {}, v === null ? "" : String(v)));
    return tr;
  }));
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
