// In-browser verification of chainvoice proof bundles (SPEC §5).
//
// A line-by-line mirror of chainvoice/chain/proof.py::verify_bundle (and the parts of
// chain/block.py, smt.py, codec.py and crypto.py it relies on), using only the browser's own
// Web Crypto API: SHA-256 via crypto.subtle.digest and Ed25519 via crypto.subtle.verify. The
// node that served this page and the bundle is NOT trusted: every claim is recomputed here.
//
// No dependencies, no build step. Exports:
//   encode(value) -> Uint8Array          canonical MessagePack (byte-identical to codec.encode)
//   decode(bytes, {canonical}) -> value  strict MessagePack decoder (maps -> Map, bin -> Uint8Array,
//                                        ints -> Number when safe, else BigInt)
//   commitMessage(chainId, height, view, blockHash) -> Uint8Array   (crypto.commit_message)
//   toJson(value), jsonEqual(a, b), hex(bytes), unhex(text, length)
//   invoiceKey(number), foldsTo(...), verifyInclusion(...), verifyAbsence(...)
//   cryptoSupport() -> {subtle, ed25519, reason}
//   verifyBundle(bundle, consortium, {number, genesisHash}) -> Verdict
//   verifyConsortiumProof(proof, pinnedGenesisHash) -> {ok, reason, consortium}
//   parseJson(text)                      JSON.parse keeping integers beyond 2^53 exact (BigInt)

"use strict";

export const COMMIT_DOMAIN = "chainvoice-commit-v1";
export const HEADER_KEYS = ["chain_id", "height", "prev_hash", "timestamp_ms", "proposer", "tx_count",
  "tx_root", "receipts_root", "state_root"];
export const BUNDLE_KEYS = ["number", "value", "state", "siblings", "header", "header_bytes", "certificate"];
export const MAX_BLOCK_TXS = 5000;
export const MAX_SIBLINGS = 256;
export const MAX_DEPTH = 32;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const EMPTY = new Uint8Array(32);

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** A verification or format failure; ``kind`` plays the role of the Python exception class. */
export class FormatError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

// -- bytes and hex --------------------------------------------------------------------------------

export function hex(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** codec.from_hex: hex text (either case) to bytes, optionally of an exact length. */
export function unhex(text, length) {
  if (typeof text !== "string") throw new FormatError("EncodingError", "expected a hex string");
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new FormatError("EncodingError", `not hex: ${JSON.stringify(text.slice(0, 80))}`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
  if (length !== undefined && out.length !== length) {
    throw new FormatError("EncodingError", `expected ${length} bytes of hex, got ${out.length}`);
  }
  return out;
}

export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// -- canonical MessagePack encoder (codec.encode / msgpack.packb(use_bin_type=True)) --------------

class Writer {
  constructor() { this.buf = new Uint8Array(256); this.n = 0; }
  room(k) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.n));
    this.buf = bigger;
  }
  byte(b) { this.room(1); this.buf[this.n++] = b; }
  bytes(bs) { this.room(bs.length); this.buf.set(bs, this.n); this.n += bs.length; }
  uint(v, width) {  // big-endian unsigned integer of `width` bytes; v is a BigInt
    this.room(width);
    for (let i = width - 1; i >= 0; i--) { this.buf[this.n + i] = Number(v & 0xffn); v >>= 8n; }
    this.n += width;
  }
  result() { return this.buf.slice(0, this.n); }
}

function utf8Order(a, b) {  // Python sorts str by code point == the order of their UTF-8 bytes
  const x = utf8.encode(a), y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function entriesOf(value) {
  if (value instanceof Map) return [...value.entries()];
  return Object.keys(value).map((k) => [k, value[k]]);
}

function writeInt(w, v) {
  v = BigInt(v);
  if (v < INT64_MIN || v > INT64_MAX) throw new FormatError("EncodingError", `integer ${v} is outside the signed 64-bit range`);
  if (v >= 0n) {
    if (v <= 0x7fn) w.byte(Number(v));
    else if (v <= 0xffn) { w.byte(0xcc); w.uint(v, 1); }
    else if (v <= 0xffffn) { w.byte(0xcd); w.uint(v, 2); }
    else if (v <= 0xffffffffn) { w.byte(0xce); w.uint(v, 4); }
    else { w.byte(0xcf); w.uint(v, 8); }
  } else {
    if (v >= -32n) w.byte(Number(v & 0xffn));
    else if (v >= -0x80n) { w.byte(0xd0); w.uint(v & 0xffn, 1); }
    else if (v >= -0x8000n) { w.byte(0xd1); w.uint(v & 0xffffn, 2); }
    else if (v >= -0x80000000n) { w.byte(0xd2); w.uint(v & 0xffffffffn, 4); }
    else { w.byte(0xd3); w.uint(v & UINT64_MAX, 8); }
  }
}

function writeLength(w, n, fix, fixMax, op8, op16, op32) {
  if (fix !== null && n <= fixMax) w.byte(fix | n);
  else if (op8 !== null && n <= 0xff) { w.byte(op8); w.uint(BigInt(n), 1); }
  else if (n <= 0xffff) { w.byte(op16); w.uint(BigInt(n), 2); }
  else if (n <= 0xffffffff) { w.byte(op32); w.uint(BigInt(n), 4); }
  else throw new FormatError("EncodingError", "value too large");
}

function writeValue(w, value, depth) {
  if (depth > MAX_DEPTH) throw new FormatError("EncodingError", "value nests too deeply");
  if (value === null || value === undefined) { w.byte(0xc0); return; }
  if (value === false) { w.byte(0xc2); return; }
  if (value === true) { w.byte(0xc3); return; }
  if (typeof value === "bigint") { writeInt(w, value); return; }
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new FormatError("EncodingError", "floats are not allowed in canonical encoding");
    writeInt(w, value);
    return;
  }
  if (typeof value === "string") {
    const b = utf8.encode(value);
    writeLength(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
    w.bytes(b);
    return;
  }
  if (value instanceof Uint8Array) {
    writeLength(w, value.length, null, 0, 0xc4, 0xc5, 0xc6);
    w.bytes(value);
    return;
  }
  if (Array.isArray(value)) {
    writeLength(w, value.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const v of value) writeValue(w, v, depth + 1);
    return;
  }
  if (value instanceof Map || (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype)) {
    const items = entriesOf(value);
    for (const [k] of items) if (typeof k !== "string") throw new FormatError("EncodingError", "map key is not a string");
    items.sort((a, b) => utf8Order(a[0], b[0]));
    writeLength(w, items.length, 0x80, 15, null, 0xde, 0xdf);
    for (const [k, v] of items) { writeValue(w, k, depth + 1); writeValue(w, v, depth + 1); }
    return;
  }
  throw new FormatError("EncodingError", `type ${typeof value} cannot be encoded canonically`);
}

/** Canonical MessagePack bytes of ``value``: maps key-sorted, smallest integer forms, bin for bytes. */
export function encode(value) {
  const w = new Writer();
  writeValue(w, value, 0);
  return w.result();
}

/** SPEC §5: what each COMMIT vote signs, msgpack.packb([domain, chain_id, height, view, block_hash]). */
export function commitMessage(chainId, height, view, blockHash) {
  return encode([COMMIT_DOMAIN, chainId, height, view, blockHash]);
}

// -- strict MessagePack decoder (msgpack.unpackb(raw=False, strict_map_key=True)) -----------------

class Reader {
  constructor(bytes) { this.b = bytes; this.at = 0; this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength); }
  need(k) { if (this.at + k > this.b.length) throw new FormatError("EncodingError", "not valid MessagePack: truncated"); }
  u8() { this.need(1); return this.b[this.at++]; }
  uint(width) {
    this.need(width);
    let v = 0n;
    for (let i = 0; i < width; i++) v = (v << 8n) | BigInt(this.b[this.at + i]);
    this.at += width;
    return v;
  }
  take(k) { this.need(k); const out = this.b.slice(this.at, this.at + k); this.at += k; return out; }
}

function intValue(v) {  // Number when exactly representable, else BigInt
  return (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) ? Number(v) : v;
}

function signed(v, width) {
  const bits = BigInt(width * 8);
  return v >= (1n << (bits - 1n)) ? v - (1n << bits) : v;
}

function readStr(r, n) {
  try {
    return utf8Strict.decode(r.take(n));
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError("EncodingError", "not valid MessagePack: invalid UTF-8 in a str");
  }
}

function readValue(r, depth) {
  if (depth > MAX_DEPTH + 1) throw new FormatError("EncodingError", "value nests too deeply");
  const t = r.u8();
  if (t <= 0x7f) return t;
  if (t >= 0xe0) return t - 0x100;
  if (t >= 0x80 && t <= 0x8f) return readMap(r, t & 0x0f, depth);
  if (t >= 0x90 && t <= 0x9f) return readArray(r, t & 0x0f, depth);
  if (t >= 0xa0 && t <= 0xbf) return readStr(r, t & 0x1f);
  switch (t) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return r.take(Number(r.uint(1)));
    case 0xc5: return r.take(Number(r.uint(2)));
    case 0xc6: return r.take(Number(r.uint(4)));
    case 0xcc: return intValue(r.uint(1));
    case 0xcd: return intValue(r.uint(2));
    case 0xce: return intValue(r.uint(4));
    case 0xcf: return intValue(r.uint(8));
    case 0xd0: return intValue(signed(r.uint(1), 1));
    case 0xd1: return intValue(signed(r.uint(2), 2));
    case 0xd2: return intValue(signed(r.uint(4), 4));
    case 0xd3: return intValue(signed(r.uint(8), 8));
    case 0xd9: return readStr(r, Number(r.uint(1)));
    case 0xda: return readStr(r, Number(r.uint(2)));
    case 0xdb: return readStr(r, Number(r.uint(4)));
    case 0xdc: return readArray(r, Number(r.uint(2)), depth);
    case 0xdd: return readArray(r, Number(r.uint(4)), depth);
    case 0xde: return readMap(r, Number(r.uint(2)), depth);
    case 0xdf: return readMap(r, Number(r.uint(4)), depth);
    case 0xca: case 0xcb:
      throw new FormatError("EncodingError", "not canonical: floats are not allowed in canonical encoding");
    default:  // 0xc1 (never used), ext and fixext types
      throw new FormatError("EncodingError", `not canonical: MessagePack type 0x${t.toString(16)} is not allowed`);
  }
}

function readArray(r, n, depth) {
  if (n > r.b.length - r.at) throw new FormatError("EncodingError", "not valid MessagePack: truncated");
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = readValue(r, depth + 1);
  return out;
}

function readMap(r, n, depth) {
  if (2 * n > r.b.length - r.at) throw new FormatError("EncodingError", "not valid MessagePack: truncated");
  const out = new Map();
  for (let i = 0; i < n; i++) {
    const k = readValue(r, depth + 1);
    if (typeof k !== "string" && !(k instanceof Uint8Array)) {
      throw new FormatError("EncodingError", "not valid MessagePack: map key is not str or bytes");
    }
    if (typeof k !== "string") throw new FormatError("EncodingError", "not canonical: map key is not a string");
    if (out.has(k)) throw new FormatError("EncodingError", "not canonical: a map key appears twice");
    out.set(k, readValue(r, depth + 1));
  }
  return out;
}

/**
 * codec.decode: MessagePack bytes to a value; with ``canonical`` (the default) refuse any
 * non-canonical form by re-encoding and comparing, exactly as the Python codec does.
 */
export function decode(bytes, { canonical = true } = {}) {
  if (!(bytes instanceof Uint8Array)) throw new FormatError("EncodingError", "expected bytes");
  const r = new Reader(bytes);
  const value = readValue(r, 0);
  if (r.at !== bytes.length) throw new FormatError("EncodingError", "not valid MessagePack: ExtraData");
  if (canonical) {
    let again;
    try {
      again = encode(value);
    } catch (e) {
      throw new FormatError("EncodingError", `not canonical: ${e.message}`);
    }
    if (!bytesEqual(again, bytes)) throw new FormatError("EncodingError", "not canonical: keys unsorted or integers not minimally encoded");
  }
  return value;
}

// -- JSON views -----------------------------------------------------------------------------------

/** codec.to_json: bytes become lowercase hex, maps become plain objects, recursively. */
export function toJson(value) {
  if (value instanceof Uint8Array) return hex(value);
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Map) {
    const out = {};
    for (const [k, v] of value) Object.defineProperty(out, k, { value: toJson(v), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

/** Python's ``==`` on JSON values (dict / list / str / int / bool / None), BigInt-aware. */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  const ta = typeof a, tb = typeof b;
  if ((ta === "number" || ta === "bigint") && (tb === "number" || tb === "bigint")) {
    if (ta === "number" && !Number.isInteger(a)) return tb === "number" && a === b;
    if (tb === "number" && !Number.isInteger(b)) return false;
    return BigInt(a) === BigInt(b);
  }
  if (ta !== tb) return false;
  if (ta !== "object") return false;  // distinct strings, booleans
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  const ka = a instanceof Map ? [...a.keys()] : Object.keys(a);
  const kb = b instanceof Map ? [...b.keys()] : Object.keys(b);
  if (ka.length !== kb.length) return false;
  const get = (o, k) => (o instanceof Map ? o.get(k) : o[k]);
  const has = (o, k) => (o instanceof Map ? o.has(k) : Object.prototype.hasOwnProperty.call(o, k));
  for (const k of ka) if (!has(b, k) || !jsonEqual(get(a, k), get(b, k))) return false;
  return true;
}

/** JSON.parse that keeps integers beyond 2^53 exact (as BigInt) where the browser allows it. */
export function parseJson(text) {
  return JSON.parse(text, function (key, value, context) {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context && typeof context.source === "string"
        && /^-?[0-9]+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

// -- hashing and signatures -----------------------------------------------------------------------

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export async function invoiceKey(number) {
  return sha256(concat(utf8.encode("invoice/"), utf8.encode(number)));
}

export const CONSORTIUM_KEY_PREIMAGE = "consortium";

let support = null;

/**
 * What this browser can check: Web Crypto at all (only in a secure context: HTTPS or localhost)
 * and Ed25519 in it (Chrome/Chromium 137+, Firefox 129+, Safari 17+).
 */
export async function cryptoSupport() {
  if (support) return support;
  if (typeof crypto === "undefined" || !crypto.subtle) {
    support = { subtle: false, ed25519: false,
      reason: "this browser withholds its Web Crypto API from this page (it is not served over HTTPS or from localhost), so it cannot check the proof" };
    return support;
  }
  try {
    // A valid Ed25519 public key (RFC 8032 test 1) and its signature of the empty message.
    const pk = unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    const sig = unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    const key = await crypto.subtle.importKey("raw", pk, { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, sig, new Uint8Array(0));
    if (!ok) throw new Error("the RFC 8032 test vector did not verify");
    support = { subtle: true, ed25519: true, reason: "" };
  } catch (e) {
    support = { subtle: true, ed25519: false,
      reason: `this browser cannot check Ed25519 signatures (${e && e.message ? e.message : e})` };
  }
  return support;
}

/** Forget the cached capability probe (tests). */
export function resetSupport() { support = null; }

const keyCache = new Map();

async function ed25519Verify(publicKey, message, signature) {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  const id = hex(publicKey);
  let key = keyCache.get(id);
  if (!key) {
    try {
      key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      return false;  // not a valid curve point: no signature by it can be valid
    }
    keyCache.set(id, key);
  }
  try {
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch (e) {
    return false;
  }
}

// -- the state tree (smt.py) ----------------------------------------------------------------------

function bit(key, i) { return (key[i >> 3] >> (7 - (i & 7))) & 1; }

function isHash(v) { return v instanceof Uint8Array && v.length === 32; }

export async function leafHash(key, valueHash) {
  return sha256(concat(Uint8Array.of(0), key, valueHash));
}

/** smt._folds_to: fold ``h`` up the key's path with ``siblings`` (last to first); compare with root. */
export async function foldsTo(root, key, h, siblings) {
  const n = siblings.length;
  if (n > MAX_SIBLINGS || !isHash(root)) return false;
  // Canonical form: the last sibling of an honest path is never EMPTY (see smt.py).
  if (n && bytesEqual(siblings[n - 1], EMPTY)) return false;
  for (let i = n - 1; i >= 0; i--) {
    const s = siblings[i];
    if (!isHash(s)) return false;
    h = bit(key, i) ? await sha256(concat(Uint8Array.of(1), s, h)) : await sha256(concat(Uint8Array.of(1), h, s));
  }
  return bytesEqual(h, root);
}

export async function verifyInclusion(root, key, valueHash, siblings) {
  if (!isHash(key) || !isHash(valueHash)) return false;
  return foldsTo(root, key, await leafHash(key, valueHash), siblings);
}

/** smt.verify_absence: empty slot (otherLeaf null) or another leaf {key, valueHash} on the path. */
export async function verifyAbsence(root, key, siblings, otherLeaf) {
  if (!isHash(key)) return false;
  if (otherLeaf === null) return foldsTo(root, key, EMPTY, siblings);
  const { key: otherKey, valueHash } = otherLeaf;
  if (!isHash(otherKey) || !isHash(valueHash) || bytesEqual(otherKey, key)) return false;
  // The other leaf must sit on the queried key's path: it shares the first len(siblings) bits.
  const depth = siblings.length;
  if (depth > MAX_SIBLINGS) return false;
  for (let i = 0; i < depth; i++) if (bit(key, i) !== bit(otherKey, i)) return false;
  return foldsTo(root, key, await leafHash(otherKey, valueHash), siblings);
}

// -- headers and certificates (chain/block.py) -----------------------------------------------------

const isUint = (v) => (typeof v === "number" && Number.isInteger(v) && v >= 0) || (typeof v === "bigint" && v >= 0n);
const codePoints = (s) => [...s].length;

function need(cond, what) { if (!cond) throw new FormatError("BlockFormatError", what); }

/** Header.decode: canonical bytes of a map with exactly the SPEC §5 header keys. */
export function decodeHeader(raw) {
  let m;
  try {
    m = decode(raw);
  } catch (e) {
    throw new FormatError("BlockFormatError", `header bytes: ${e.message}`);
  }
  need(m instanceof Map, "header is not a map");
  need(m.size === HEADER_KEYS.length && HEADER_KEYS.every((k) => m.has(k)),
    `header keys must be exactly ${JSON.stringify([...HEADER_KEYS].sort())}`);
  const chainId = m.get("chain_id"), proposer = m.get("proposer");
  need(typeof chainId === "string" && codePoints(chainId) > 0 && codePoints(chainId) <= 64, "header chain_id");
  need(isUint(m.get("height")), "header height");
  need(isHash(m.get("prev_hash")), "header prev_hash");
  need(isUint(m.get("timestamp_ms")), "header timestamp_ms");
  need(typeof proposer === "string" && codePoints(proposer) > 0 && codePoints(proposer) <= 64, "header proposer");
  need(isUint(m.get("tx_count")) && BigInt(m.get("tx_count")) <= BigInt(MAX_BLOCK_TXS), "header tx_count");
  for (const k of ["tx_root", "receipts_root", "state_root"]) need(isHash(m.get(k)), `header ${k}`);
  return m;
}

function certificateFromJson(c) {
  // proof.py builds the map from exactly these fields (KeyError -> malformed), then from_map checks.
  for (const k of ["height", "view", "block_hash", "votes"]) {
    if (typeof c !== "object" || c === null || Array.isArray(c) || !(k in c)) throw new FormatError("KeyError", `'${k}'`);
  }
  const blockHash = unhex(c.block_hash, 32);
  if (!Array.isArray(c.votes)) throw new FormatError("TypeError", "certificate votes is not a list");
  const votes = c.votes.map((v) => {
    if (typeof v !== "object" || v === null || !("node" in v)) throw new FormatError("KeyError", "'node'");
    if (!("signature" in v)) throw new FormatError("KeyError", "'signature'");
    return { node: v.node, signature: unhex(v.signature, 64) };
  });
  need(isUint(c.height) && isUint(c.view), "certificate height/view");
  need(votes.length <= 1024, "certificate votes");
  for (const v of votes) need(typeof v.node === "string", "certificate vote");
  return { height: c.height, view: c.view, blockHash, votes };
}

const pyRepr = (s) => (s.includes("'") && !s.includes('"') ? `"${s}"` : `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`);

/**
 * certificate_problem: why ``cert`` does not prove its block committed, or null when it does.
 * ``ed25519`` false means signatures cannot be checked here: returns {skipped: true} if every
 * other condition holds.
 */
export async function certificateProblem(cert, chainId, nodeKeys, f, { expectHeight, expectHash, ed25519 = true } = {}) {
  if (expectHeight !== undefined && BigInt(cert.height) !== BigInt(expectHeight)) {
    return `certificate is for height ${cert.height}, not ${expectHeight}`;
  }
  if (expectHash !== undefined && !bytesEqual(cert.blockHash, expectHash)) return "certificate is for a different block hash";
  const message = commitMessage(chainId, cert.height, cert.view, cert.blockHash);
  const seen = new Set();
  for (const vote of cert.votes) {
    if (seen.has(vote.node)) return `certificate has two votes from node ${vote.node}`;
    seen.add(vote.node);
    const key = nodeKeys.get(vote.node);
    if (key === undefined) return `certificate vote from ${pyRepr(vote.node)}, which is not a consortium node`;
    if (ed25519 && !(await ed25519Verify(key, message, vote.signature))) {
      return `certificate vote from ${vote.node} has an invalid signature`;
    }
  }
  if (seen.size < 2 * f + 1) return `certificate has ${seen.size} valid votes; 2f+1 = ${2 * f + 1} are needed`;
  return null;
}

// -- consortium -----------------------------------------------------------------------------------

/**
 * A consortium from JSON (GET /v1/consortium or a genesis file's "consortium"): chain_id, f,
 * nodes [{id, public_key (hex), role}]. Checks what Consortium.__post_init__ checks.
 */
export function consortiumFromJson(doc) {
  if (typeof doc !== "object" || doc === null) throw new FormatError("ConsortiumError", "consortium is not an object");
  const { chain_id: chainId, f, nodes } = doc;
  if (typeof chainId !== "string" || !Array.isArray(nodes) || !Number.isInteger(f)) {
    throw new FormatError("ConsortiumError", "consortium needs chain_id, f and nodes");
  }
  if (f < 0 || nodes.length < 3 * f + 1) throw new FormatError("ConsortiumError", `${nodes.length} nodes cannot tolerate f=${f}: PBFT needs n >= 3f+1`);
  const keys = new Map();
  const seenKeys = new Set();
  const list = [];
  for (const n of nodes) {
    if (typeof n !== "object" || n === null || typeof n.id !== "string") throw new FormatError("ConsortiumError", "malformed consortium node");
    const pk = unhex(n.public_key, 32);
    if (keys.has(n.id)) throw new FormatError("ConsortiumError", "node ids must be distinct");
    if (seenKeys.has(hex(pk))) throw new FormatError("ConsortiumError", "node keys must be distinct");
    keys.set(n.id, pk);
    seenKeys.add(hex(pk));
    list.push({ id: n.id, role: String(n.role ?? ""), publicKey: pk });
  }
  return { chainId, f, n: list.length, quorum: 2 * f + 1, nodes: list, nodeKeys: keys };
}

/** A short, comparable fingerprint of a node key: the first 8 bytes of SHA-256(key), grouped. */
export async function fingerprint(publicKey) {
  if (typeof crypto === "undefined" || !crypto.subtle) return `key ${hex(publicKey.subarray(0, 8))}`;
  const h = hex((await sha256(publicKey)).subarray(0, 8));
  return h.match(/.{4}/g).join(":");
}

/**
 * Check a consortium proof against a pinned genesis hash: {header_bytes, value, siblings} where
 * value is the canonical consortium map stored at state key SHA256("consortium") in the genesis
 * state (chain/genesis.py). Returns {ok, reason, consortium}.
 */
export async function verifyConsortiumProof(proof, pinnedGenesisHash) {
  try {
    const headerBytes = unhex(proof.header_bytes);
    const header = decodeHeader(headerBytes);
    const blockHash = await sha256(headerBytes);
    if (!bytesEqual(blockHash, pinnedGenesisHash)) {
      return { ok: false, reason: `the genesis header hashes to ${hex(blockHash)}, not the pinned ${hex(pinnedGenesisHash)}` };
    }
    if (BigInt(header.get("height")) !== 0n) return { ok: false, reason: "the consortium proof is not against block 0" };
    const value = unhex(proof.value);
    const siblings = proof.siblings.map((s) => unhex(s, 32));
    const key = await sha256(utf8.encode(CONSORTIUM_KEY_PREIMAGE));
    if (!(await verifyInclusion(header.get("state_root"), key, await sha256(value), siblings))) {
      return { ok: false, reason: "the consortium proof does not fold to the genesis state root" };
    }
    const doc = toJson(decode(value));
    const consortium = consortiumFromJson(doc);
    if (consortium.chainId !== header.get("chain_id")) return { ok: false, reason: "the proven consortium is for another chain" };
    return { ok: true, reason: "consortium proven against the pinned genesis hash", consortium, genesisHash: blockHash };
  } catch (e) {
    return { ok: false, reason: `malformed consortium proof: ${e.kind || e.name}: ${e.message}` };
  }
}

/**
 * A genesis file (chain/genesis.py to_json) as a trust root: its consortium, and its block hash
 * recomputed from its header (so a file whose header and block_hash disagree is refused).
 */
export async function genesisTrust(doc) {
  if (typeof doc !== "object" || doc === null || typeof doc.header !== "object" || doc.header === null) {
    throw new FormatError("GenesisError", "not a chainvoice genesis file (no header)");
  }
  const h = doc.header;
  const map = new Map();
  for (const k of HEADER_KEYS) {
    if (!(k in h)) throw new FormatError("GenesisError", `genesis header lacks ${k}`);
    map.set(k, ["prev_hash", "tx_root", "receipts_root", "state_root"].includes(k) ? unhex(h[k], 32) : h[k]);
  }
  const headerBytes = encode(map);
  decodeHeader(headerBytes);
  const blockHash = await sha256(headerBytes);
  if (typeof doc.block_hash === "string" && doc.block_hash.toLowerCase() !== hex(blockHash)) {
    throw new FormatError("GenesisError", "the genesis file's block_hash does not match its header");
  }
  const consortium = consortiumFromJson(doc.consortium);
  if (consortium.chainId !== h.chain_id) throw new FormatError("GenesisError", "the genesis file's consortium is for another chain");
  return { consortium, genesisHash: blockHash, headerBytes };
}

// -- the bundle (chain/proof.py) -------------------------------------------------------------------

function verdict(ok, reason, extra = {}) {
  return { ok, reason, number: "", height: -1, exists: false, status: "", state: null, unverified: false, ...extra };
}

/**
 * verify_bundle: check a bundle using only the consortium's keys and f (and the genesis hash for
 * height 0). Every claim is recomputed; the verdict's ``reason`` says exactly what failed, in
 * the same words as the Python verifier. If this browser cannot check Ed25519, a bundle that
 * passes every other check comes back with ok=false, unverified=true.
 */
export async function verifyBundle(bundle, consortium, { number = null, genesisHash = null } = {}) {
  const started = performance.now();
  let v;
  try {
    v = await verifyInner(bundle, consortium, genesisHash, number);
  } catch (e) {
    if (!(e instanceof FormatError) && !(e instanceof TypeError) && !(e instanceof RangeError) && !(e instanceof SyntaxError)) throw e;
    v = verdict(false, `malformed bundle: ${e.kind || e.name}: ${e.message}`);
  }
  v.ms = performance.now() - started;
  return v;
}

async function verifyInner(bundle, consortium, genesisHash, number) {
  const sup = await cryptoSupport();
  if (!sup.subtle) return verdict(false, sup.reason, { unverified: true });
  if (typeof bundle !== "object" || bundle === null || Array.isArray(bundle)) return verdict(false, "a proof bundle is a JSON object");
  const missing = BUNDLE_KEYS.filter((k) => !Object.prototype.hasOwnProperty.call(bundle, k));
  if (missing.length) return verdict(false, `bundle lacks ${missing.join(", ")}`);
  const claimed = bundle.number;
  if (typeof claimed !== "string") return verdict(false, "bundle number is not a string");
  if (number !== null && claimed !== number) return verdict(false, `bundle is for invoice ${claimed}, not ${number}`);

  const headerBytes = unhex(bundle.header_bytes);
  const header = decodeHeader(headerBytes);
  if (!jsonEqual(toJson(header), bundle.header)) return verdict(false, "header does not match header_bytes", { number: claimed });
  const chainId = header.get("chain_id");
  if (chainId !== consortium.chainId) {
    return verdict(false, `header is for chain ${pyRepr(chainId)}, the consortium's is ${pyRepr(consortium.chainId)}`, { number: claimed });
  }
  const blockHash = await sha256(headerBytes);
  const height = header.get("height");
  const at = { number: claimed, height, blockHash: hex(blockHash), chainId };

  const certJson = bundle.certificate;
  let signers = [];
  let skippedSignatures = false;
  if (BigInt(height) === 0n) {
    if (genesisHash === null || !bytesEqual(blockHash, genesisHash)) {
      return verdict(false, "height 0 is trusted only against the genesis file's block hash", { number: claimed });
    }
  } else {
    if (certJson === null) return verdict(false, "bundle has no commit certificate", at);
    const cert = certificateFromJson(certJson);
    const problem = await certificateProblem(cert, consortium.chainId, consortium.nodeKeys, consortium.f,
      { expectHeight: height, expectHash: blockHash, ed25519: sup.ed25519 });
    if (problem) return verdict(false, `certificate: ${problem}`, at);
    signers = cert.votes.map((x) => x.node);
    skippedSignatures = !sup.ed25519;
    at.view = cert.view;
  }
  at.signers = signers;

  const key = await invoiceKey(claimed);
  if (!Array.isArray(bundle.siblings)) throw new FormatError("TypeError", "siblings is not a list");
  const siblings = bundle.siblings.map((s) => unhex(s, 32));
  const root = header.get("state_root");
  at.depth = siblings.length;
  let result;
  if (bundle.value === null) {
    const other = Object.prototype.hasOwnProperty.call(bundle, "other_leaf") ? bundle.other_leaf : null;
    const otherLeaf = other === null || other === undefined ? null
      : { key: unhex(other.key, 32), valueHash: unhex(other.value_hash, 32) };
    if (bundle.state !== null) return verdict(false, "bundle has a state but no value", at);
    if (!(await verifyAbsence(root, key, siblings, otherLeaf))) {
      return verdict(false, "absence proof does not fold to the header's state root", at);
    }
    result = verdict(true, `invoice ${claimed} does not exist as of height ${height}`, { ...at, exists: false });
  } else {
    const value = unhex(bundle.value);
    if (!(await verifyInclusion(root, key, await sha256(value), siblings))) {
      return verdict(false, "state proof does not fold to the header's state root", at);
    }
    const record = decode(value);
    if (!(record instanceof Map) || record.get("number") !== claimed) {
      return verdict(false, "proven value is not the record of this invoice", at);
    }
    const state = toJson(record);
    if (!jsonEqual(state, bundle.state)) return verdict(false, "the bundle's state does not match its proven value", at);
    const status = record.has("status") ? record.get("status") : "";
    const flagged = record.get("flagged") ? " (flagged)" : "";
    result = verdict(true, `invoice ${claimed} is ${status}${flagged} as of height ${height}`,
      { ...at, exists: true, status, state });
  }
  if (skippedSignatures) {
    return { ...result, ok: false, unverified: true, provenIfSigned: result.reason,
      reason: `${sup.reason}; the answer is unverified` };
  }
  return result;
}

/** The Beijing-time (UTC+8) date of a block timestamp, as calendar.date_of computes it. */
export function beijingDate(timestampMs) {
  const d = new Date(Number(timestampMs) + 8 * 3600 * 1000);
  const y = d.getUTCFullYear(), m = d.getUTCMonth() + 1, day = d.getUTCDate();
  return `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}
