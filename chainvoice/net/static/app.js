// The public verification page: ask this node, then check its answer in the browser.
//
// 1. GET /v1/check and /v1/invoices/{n}: the node's answer (status, seller, history).
// 2. GET /v1/invoices/{n}/proof and /v1/consortium: a proof bundle, verified here by verify.js
//    against the consortium's keys (from the node, a loaded genesis file, or a pinned genesis hash).
// All data from the node is put on the page as text nodes, never as HTML.

import * as V from "./verify.js";

const $ = (id) => document.getElementById(id);
const STORE = "chainvoice.verify.";

// -- small DOM helpers (text nodes only, never markup built from data) ------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function show(container, ...children) {
  container.replaceChildren(...children.flat().filter(Boolean));
  container.hidden = false;
}

const short = (h, n = 8) => (typeof h === "string" && h.length > 2 * n ? `${h.slice(0, n)}…${h.slice(-4)}` : String(h ?? ""));

function storageGet(k) { try { return localStorage.getItem(STORE + k); } catch { return null; } }
function storageSet(k, v) { try { if (v === null) localStorage.removeItem(STORE + k); else localStorage.setItem(STORE + k, v); } catch { /* private mode */ } }

// -- money: yuan text <-> fen, integer arithmetic only -----------------------------------------------

/** "1,017.5" / "¥1017.50" / "1017" -> 101750n fen; null if not an amount with at most 2 decimals. */
export function yuanToFen(text) {
  const t = String(text).replace(/[\s,¥￥]/g, "").replace(/^CNY/i, "");
  const m = /^([0-9]+)(?:\.([0-9]{0,2}))?$/.exec(t) || /^()\.([0-9]{1,2})$/.exec(t);
  if (!m) return null;
  const fen = BigInt(m[1] || "0") * 100n + BigInt((m[2] || "").padEnd(2, "0"));
  return fen;
}

export function fenToYuan(fen) {
  if (fen === null || fen === undefined || fen === "") return "";
  const f = BigInt(fen);
  const sign = f < 0n ? "-" : "";
  const a = f < 0n ? -f : f;
  const whole = (a / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}¥${whole}.${(a % 100n).toString().padStart(2, "0")}`;
}

// -- fetching ---------------------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function getJson(path) {
  let r;
  try {
    r = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (e) {
    throw new ApiFailure(0, "NETWORK", `could not reach this node (${e.message})`);
  }
  const text = await r.text();
  let body;
  try {
    body = V.parseJson(text);
  } catch {
    throw new ApiFailure(r.status, "BAD_RESPONSE", `the node answered ${r.status} with something that is not JSON`);
  }
  if (!r.ok) {
    const err = body && body.error ? body.error : {};
    throw new ApiFailure(r.status, err.code || "HTTP_" + r.status, err.message || `HTTP ${r.status}`);
  }
  return body;
}

// -- trust: which consortium keys the verification uses -------------------------------------------------

const trust = {
  mode: storageGet("mode") || "node",   // "node" | "genesis" | "pin"
  genesisText: storageGet("genesis") || "",
  pin: storageGet("pin") || "",
};

/** Resolve the consortium to verify against, and describe where it came from. */
async function resolveTrust(nodeConsortium) {
  if (trust.mode === "genesis") {
    if (!trust.genesisText) throw new Error("no genesis file is loaded (open “What this page trusts” to load one)");
    let doc;
    try { doc = V.parseJson(trust.genesisText); } catch { throw new Error("the loaded genesis file is not JSON"); }
    const g = await V.genesisTrust(doc);
    return { consortium: g.consortium, genesisHash: g.genesisHash,
      source: "the genesis file you loaded", sourceShort: "your genesis file" };
  }
  if (trust.mode === "pin") {
    const pin = trust.pin.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(pin)) throw new Error("the pinned genesis hash must be 64 hex digits");
    let proof;
    try {
      proof = await getJson("/v1/consortium/proof");
    } catch (e) {
      throw new Error(`this node cannot prove its consortium against your pinned genesis hash (${e.message})`);
    }
    const r = await V.verifyConsortiumProof(proof, V.unhex(pin, 32));
    if (!r.ok) throw new Error(`the node's consortium does not match your pinned genesis hash: ${r.reason}`);
    return { consortium: r.consortium, genesisHash: r.genesisHash,
      source: `the consortium proven against your pinned genesis hash ${short(pin, 12)}`, sourceShort: "your pinned genesis hash" };
  }
  const consortium = V.consortiumFromJson(nodeConsortium);
  const genesisHash = typeof nodeConsortium.genesis_hash === "string" ? V.unhex(nodeConsortium.genesis_hash, 32) : null;
  return { consortium, genesisHash,
    source: "the consortium keys this node reported (/v1/consortium) — compare the fingerprints with your genesis file, or load it below",
    sourceShort: "this node's consortium keys" };
}

/** Trust on first use: warn if the node's consortium keys changed since this browser last saw them. */
async function keyChangeWarning(consortium, fps) {
  const seenKey = "seen." + consortium.chainId;
  const now = consortium.nodes.map((n, i) => `${n.id}=${fps[i]}`).join(",") + `;f=${consortium.f}`;
  const before = storageGet(seenKey);
  if (before === null) { storageSet(seenKey, now); return null; }
  if (before !== now) return "The consortium keys differ from those this browser saw on an earlier visit. Check them against your genesis file before trusting this result.";
  return null;
}

// -- rendering ----------------------------------------------------------------------------------------

const STATUS_TEXT = {
  ISSUED: "issued — valid and not yet claimed",
  LOCKED: "locked — a reimbursement claim is in progress",
  REIMBURSED: "reimbursed — it has already been claimed; it cannot be claimed again",
  DECLARED: "declared — reimbursed and declared for tax",
  REVERSED: "reversed — cancelled by a red-letter invoice",
};

function statusBadge(status, flagged) {
  return el("span", {},
    el("span", { class: `badge s-${String(status).toLowerCase()}`, text: status }),
    flagged ? el("span", { class: "badge s-flagged", text: "FLAGGED" }) : null);
}

function renderCheck(c) {
  const title = { consistent: "Consistent", inconsistent: "Inconsistent", unknown: "Unknown" }[c.result] || String(c.result);
  const icon = { consistent: "✓", inconsistent: "✗", unknown: "?" }[c.result] || "";
  const rows = [];
  if (c.status) {
    rows.push(["Live status", el("span", {}, statusBadge(c.status, c.flagged), " ", STATUS_TEXT[c.status] || "")]);
    if (c.flagged) rows.push(["Tax control", "flagged by the tax authority: this invoice cannot move"]);
    rows.push(["Seller", `${c.seller_name ?? ""} (${c.seller_tax_id ?? ""})`]);
    rows.push(["Remaining", fenToYuan(c.remaining)]);
  }
  if (c.mismatches && c.mismatches.length) rows.push(["Differs in", c.mismatches.join(", ")]);
  const card = el("div", { class: `card check ${c.result}`, id: "check-card", "data-result": c.result },
    el("div", { class: "card-title" }, el("span", { class: "icon", text: icon }), ` ${title}`),
    el("p", { class: "lead", text: c.result === "unknown"
      ? "This node has no invoice with that number. A real invoice is on the chain within seconds of being issued."
      : String(c.message ?? "") }),
    rows.length ? el("dl", { class: "facts" }, rows.map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)])) : null,
    el("p", { class: "muted small", text: `The node's answer, as of block ${c.height}. Checked below against a proof.` }));
  show($("check-result"), card);
}

function renderHistory(inv) {
  const box = $("history");
  if (!inv || !Array.isArray(inv.history) || !inv.history.length) { box.hidden = true; box.replaceChildren(); return; }
  const table = el("table", { id: "history-table" },
    el("thead", {}, el("tr", {}, ["Block", "Transaction", "Outcome", "Signer", "Transaction id"].map((h) => el("th", { text: h })))),
    el("tbody", {}, inv.history.map((e) => el("tr", { class: e.status === "ok" ? "" : "rejected" },
      el("td", { text: e.height }),
      el("td", { text: String(e.kind).replace(/_/g, " ") }),
      el("td", {}, e.status === "ok" ? "ok" : el("span", { class: "bad" }, `rejected ${e.code || ""}`)),
      el("td", {}, el("code", { text: short(e.signer, 6), title: e.signer })),
      el("td", {}, el("code", { text: short(e.tx_id, 8), title: e.tx_id }))))));
  show(box, el("h2", { text: "History on the chain" }),
    el("p", { class: "muted small", text: "Every transaction that named this invoice, accepted or rejected (rejected attempts stay on the chain as evidence)." }),
    el("div", { class: "scroll" }, table));
}

function pending(text) {
  show($("verdict"), el("div", { class: "card proof pending", id: "verdict-card", "data-state": "pending" },
    el("div", { class: "card-title", id: "verdict-title", text: text })));
}

/** What the proven state says about the person's number, date and total. */
function provenComparison(v, form) {
  if (!v.exists) return { result: "unknown", text: "The proof shows this invoice number does not exist on the chain: a fake or mistyped number." };
  const s = v.state;
  const diffs = [];
  const date = V.beijingDate(s.issued_at_ms);
  if (date !== form.date) diffs.push(`date (the chain says ${date})`);
  if (BigInt(s.total) !== form.fen) diffs.push(`total (the chain says ${fenToYuan(s.total)})`);
  if (diffs.length) return { result: "inconsistent", text: `The proven invoice differs from what you entered in ${diffs.join(" and ")}.` };
  return { result: "consistent", text: "The proven invoice matches the number, date and total you entered." };
}

async function renderVerdict(v, t, form, checkAnswer, fps) {
  const c = t.consortium;
  const nSigned = (v.signers || []).length;
  let state, title, lead;
  if (v.ok) {
    state = v.exists ? "verified" : "absent";
    const signed = v.height === 0 || BigInt(v.height ?? -1) === 0n
      ? `block 0 matched ${t.sourceShort === "this node's consortium keys" ? "the genesis hash this node reported" : "your genesis hash"}`
      : `signed by ${nSigned} of ${c.n} consortium nodes (f = ${c.f})`;
    // With the node's own key list the answer is checked, but the keys are still this node's word.
    const trustNote = t.mode === "node"
      ? "you did not have to trust this node's answer, only its list of consortium keys (compare the fingerprints below)"
      : `you did not have to trust this node (keys from ${t.sourceShort})`;
    title = v.exists
      ? `✓ Verified in your browser: ${signed}, state proof to block ${v.height}'s state root — ${trustNote}`
      : `✓ Verified in your browser: invoice ${v.number} does not exist (as of block ${v.height}); ${signed} — ${trustNote}`;
    lead = v.reason;
  } else if (v.unverified) {
    state = "unverified";
    title = "⚠ This browser cannot check the proof's signatures; the answer is unverified";
    lead = v.reason;
  } else {
    state = "failed";
    title = `✗ The proof did NOT verify: ${v.reason} — do not trust this answer`;
    lead = "Something between the chain and your screen is wrong: this node, or the connection to it. Ask another consortium node, or the seller, before relying on it.";
  }
  const facts = [];
  if (v.ok || v.provenIfSigned) {
    const cmp = provenComparison(v, form);
    facts.push(["Your invoice", el("span", { class: `cmp ${cmp.result}`, id: "proven-result", "data-result": cmp.result, text: cmp.text })]);
    const said = checkAnswer ? [checkAnswer.result, checkAnswer.status ?? "", Boolean(checkAnswer.flagged)] : null;
    const proven = [cmp.result, v.exists ? v.state.status : "", v.exists ? Boolean(v.state.flagged) : false];
    if (said && said.join("|") !== proven.join("|")) {
      const describe = ([r, s, f]) => [r, s, f ? "flagged" : ""].filter(Boolean).join(", ");
      facts.push(["Warning", el("span", { class: "bad", id: "disagreement",
        text: `The node's quick answer (${describe(said)}; block ${checkAnswer.height}) differs from what its proof shows (${describe(proven)}; block ${v.height}). Trust the proof${String(checkAnswer.height) === String(v.height) ? ", not this node" : " (the chain may have moved on between the two answers)"}.` })]);
    }
    if (v.exists) {
      const s = v.state;
      facts.push(["Proven status", el("span", {}, statusBadge(s.status, s.flagged), " ", STATUS_TEXT[s.status] || "")]);
      facts.push(["Seller", `${s.seller_name} (${s.seller_tax_id})`]);
      facts.push(["Total / remaining", `${fenToYuan(s.total)} / ${fenToYuan(s.remaining)}`]);
      facts.push(["Issued", `${V.beijingDate(s.issued_at_ms)} (Beijing time), block ${s.issued_height}`]);
      facts.push(["Holder", el("code", { text: short(s.holder, 10), title: s.holder })]);
    }
    if (v.blockHash) facts.push(["Block", el("span", {}, `${v.height}, hash `, el("code", { text: short(v.blockHash, 12), title: v.blockHash }))]);
  }
  facts.push(["Verification time", el("span", { id: "verify-ms", "data-ms": v.ms.toFixed(2), text: `${v.ms.toFixed(1)} ms in this browser` })]);
  facts.push(["Trusted", t.source]);

  const keyList = el("ul", { class: "keys", id: "trusted-keys" }, c.nodes.map((n, i) => el("li", {},
    el("span", { class: (v.signers || []).includes(n.id) ? "signed" : "unsigned", text: (v.signers || []).includes(n.id) ? "✓" : "·" }),
    ` ${n.id} `, el("span", { class: "muted", text: `(${n.role})` }), " ",
    el("code", { text: fps[i], title: V.hex(n.publicKey) }))));
  facts.push([`Consortium keys (${c.chainId})`, keyList]);

  const warn = t.mode === "node" ? await keyChangeWarning(c, fps) : null;
  const card = el("div", { class: `card proof ${state}`, id: "verdict-card", "data-state": state },
    el("div", { class: "card-title", id: "verdict-title", text: title }),
    el("p", { class: "lead", id: "verdict-reason", text: lead }),
    warn ? el("p", { class: "bad", id: "key-change", text: warn }) : null,
    el("dl", { class: "facts" }, facts.map(([k, val]) => [el("dt", { text: k }), el("dd", {}, val)])));
  show($("verdict"), card);
}

/** Mark the node's quick answer as confirmed by the proof, or not, once the verdict is in. */
function annotateCheck(state) {
  const card = $("check-card");
  if (!card || card.dataset.result === "error") return;
  const confirmed = state === "verified" || state === "absent";
  card.classList.toggle("unconfirmed", !confirmed);
  const note = el("p", { class: confirmed ? "confirm ok" : "confirm bad", id: "check-confirmation",
    text: confirmed ? "✓ Confirmed by the proof checked below." : "✗ Not confirmed: the proof below did not verify. Do not rely on this answer." });
  const old = $("check-confirmation");
  if (old) old.replaceWith(note); else card.append(note);
}

function renderVerdictError(state, title, reason) {
  show($("verdict"), el("div", { class: `card proof ${state}`, id: "verdict-card", "data-state": state },
    el("div", { class: "card-title", id: "verdict-title", text: title }),
    el("p", { class: "lead", id: "verdict-reason", text: reason })));
  annotateCheck(state);
}

// -- the flow ----------------------------------------------------------------------------------------

function readForm() {
  const number = $("number").value.replace(/[\s-]/g, "");
  const date = $("date").value.trim();
  const fen = yuanToFen($("total").value);
  if (!/^[0-9]{20}$/.test(number)) return { error: "The invoice number is the 20 digits printed on the invoice." };
  if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(date)) return { error: "Enter the issue date (YYYY-MM-DD)." };
  if (fen === null || fen.toString().length > 18) return { error: "Enter the total in yuan, e.g. 1017.00 (at most two decimals)." };
  return { number, date, fen };
}

let run = 0;

async function check(ev) {
  if (ev) ev.preventDefault();
  const form = readForm();
  const mine = ++run;
  $("history").hidden = true;
  if (form.error) {
    show($("check-result"), el("div", { class: "card check inconsistent", id: "form-error", text: form.error }));
    $("verdict").hidden = true;
    return;
  }
  $("check-btn").disabled = true;
  show($("check-result"), el("div", { class: "card pending", text: "Asking this node…" }));
  pending("Waiting for the node's proof…");
  try {
    const q = new URLSearchParams({ number: form.number, date: form.date, total: form.fen.toString() });
    const [checkR, invR, proofR, consR] = await Promise.allSettled([
      getJson(`/v1/check?${q}`), getJson(`/v1/invoices/${form.number}`),
      getJson(`/v1/invoices/${form.number}/proof`), getJson("/v1/consortium"),
    ]);
    if (mine !== run) return;
    let checkAnswer = null;
    if (checkR.status === "fulfilled") {
      checkAnswer = checkR.value;
      renderCheck(checkAnswer);
    } else {
      show($("check-result"), el("div", { class: "card check inconsistent", id: "check-card", "data-result": "error" },
        el("div", { class: "card-title", text: "The node could not answer" }), el("p", { text: checkR.reason.message })));
    }
    renderHistory(invR.status === "fulfilled" ? invR.value : null);

    if (proofR.status === "rejected") {
      renderVerdictError("unverified", "⚠ No proof: the answer above is unverified", `The node did not give a proof: ${proofR.reason.message}`);
      return;
    }
    if (consR.status === "rejected" && trust.mode === "node") {
      renderVerdictError("unverified", "⚠ No consortium keys: the answer above is unverified", `The node did not list its consortium: ${consR.reason.message}`);
      return;
    }
    let t;
    try {
      t = await resolveTrust(consR.status === "fulfilled" ? consR.value : null);
      t.mode = trust.mode;
    } catch (e) {
      renderVerdictError("failed", `✗ The proof could not be checked: ${e.message} — do not trust this answer`, e.message);
      return;
    }
    const v = await V.verifyBundle(proofR.value, t.consortium, { number: form.number, genesisHash: t.genesisHash });
    if (mine !== run) return;
    const fps = await Promise.all(t.consortium.nodes.map((n) => V.fingerprint(n.publicKey)));
    await renderVerdict(v, t, form, checkAnswer, fps);
    annotateCheck($("verdict-card").dataset.state);
    window.lastVerdict = { ok: v.ok, reason: v.reason, ms: v.ms, height: typeof v.height === "bigint" ? Number(v.height) : v.height,
      exists: v.exists, status: v.status, unverified: v.unverified };
  } catch (e) {
    renderVerdictError("failed", `✗ The page could not check this answer: ${e.message} — do not trust it`, String(e.stack || e));
  } finally {
    if (mine === run) $("check-btn").disabled = false;
  }
}

// -- the trust panel -------------------------------------------------------------------------------

function renderTrustPanel() {
  for (const r of document.querySelectorAll('input[name="trust"]')) r.checked = r.value === trust.mode;
  $("genesis-text").value = trust.genesisText;
  $("pin").value = trust.pin;
  $("trust-summary").textContent = {
    node: "this node's consortium keys (compare fingerprints)",
    genesis: "the genesis file you loaded",
    pin: "a genesis hash you pinned",
  }[trust.mode];
}

async function saveTrust() {
  const mode = document.querySelector('input[name="trust"]:checked')?.value || "node";
  trust.mode = mode;
  trust.genesisText = $("genesis-text").value.trim();
  trust.pin = $("pin").value.trim();
  storageSet("mode", mode);
  storageSet("genesis", trust.genesisText || null);
  storageSet("pin", trust.pin || null);
  const note = $("trust-note");
  note.textContent = "";
  if (mode === "genesis" && trust.genesisText) {
    try {
      const g = await V.genesisTrust(V.parseJson(trust.genesisText));
      note.textContent = `Genesis file of chain ${g.consortium.chainId}: ${g.consortium.n} nodes, f = ${g.consortium.f}, genesis hash ${V.hex(g.genesisHash)}.`;
    } catch (e) {
      note.textContent = `This genesis file cannot be used: ${e.message}`;
    }
  }
  renderTrustPanel();
}

function init() {
  $("check-form").addEventListener("submit", check);
  for (const r of document.querySelectorAll('input[name="trust"]')) r.addEventListener("change", saveTrust);
  $("genesis-text").addEventListener("change", saveTrust);
  $("pin").addEventListener("change", saveTrust);
  $("genesis-file").addEventListener("change", async () => {
    const file = $("genesis-file").files[0];
    if (!file) return;
    $("genesis-text").value = await file.text();
    document.querySelector('input[name="trust"][value="genesis"]').checked = true;
    await saveTrust();
  });
  renderTrustPanel();
  V.cryptoSupport().then((s) => {
    if (!s.ed25519) {
      const b = $("capability");
      b.textContent = `Note: ${s.reason}. Answers on this page will be marked unverified.`;
      b.hidden = false;
    }
  });
  // A link or QR code on the invoice can carry the fields: /?number=…&date=…&total=<yuan>
  const q = new URLSearchParams(location.search);
  if (q.get("number")) $("number").value = q.get("number");
  if (q.get("date")) $("date").value = q.get("date");
  if (q.get("total")) $("total").value = q.get("total");
  if (q.get("number") && q.get("date") && q.get("total")) check();
  document.body.dataset.ready = "1";
}

init();
