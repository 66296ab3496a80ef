#!/usr/bin/env bash
# scripts/get_data.sh: makes data/ (git-ignored) hold the evaluation and
# training data sets, every file verified against scripts/data.sha256.
#
#   scripts/get_data.sh            (what `make data` runs)
#
# For each file listed in scripts/data.sha256, in this order:
#   1. data/FILE already there with the pinned checksum: kept (so a second run
#      only re-hashes, about a second);
#   2. DATA_MIRROR/FILE exists (default ../shared/data beside the repository)
#      with the pinned checksum: copied into data/ (DATA_LINK=1 symlinks
#      instead: then anything written into data/ would land in the mirror);
#   3. otherwise downloaded from the data set's public home at a pinned commit
#      (curl or wget), checked, then moved into place.
# Environment: DATA_MIRROR (mirror folder), DATA_DIR (default <repo>/data),
# DATA_LINK=1 (symlink instead of copy), DATA_OFFLINE=1 (never download).
# The evaluation sets (xquad-r/, mlqa-r/) are required: the script fails with
# exit status 1 when any of their files cannot be had. The other folders
# (training text for the tokenizer, fixtures) are optional: a failure there is
# reported as a warning. squad-train/ exists only in the mirror (it was rebuilt
# from the SQuAD explorer's pages; no single public file has that checksum).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUMS="$ROOT/scripts/data.sha256"
DATA=${DATA_DIR:-$ROOT/data}
MIRROR=${DATA_MIRROR:-$ROOT/../shared/data}
LINK=${DATA_LINK:-0}

say() { echo "get_data: $*" >&2; }

[ -f "$SUMS" ] || { say "missing $SUMS"; exit 1; }
command -v sha256sum >/dev/null || { say "sha256sum not found (coreutils)"; exit 1; }

# Fast path: everything already verified.
if [ -d "$DATA" ] && (cd "$DATA" && sha256sum --quiet -c "$SUMS" >/dev/null 2>&1); then
    say "$DATA: all $(wc -l <"$SUMS") files present and verified"
    exit 0
fi

# Public homes, pinned (see ../shared/data/README.md). url_for FILE prints the
# URL of FILE (a path relative to data/), or nothing when it has no public copy.
GH=https://github.com
LAREQA_XQ=$GH/google-research-datasets/lareqa/raw/9bc8c7f
LAREQA_ML=$GH/google-research-datasets/lareqa/raw/354d67d1cd066854cdfbf5ad0e6105528976141d
NTREX=$GH/MicrosoftTranslator/NTREX/raw/8561f6a
LASER=$GH/facebookresearch/LASER/raw/74bc6ae/data/tatoeba/v1
SPM=$GH/google/sentencepiece/raw/2734490/python/test
ntrex_code() {
    case $1 in
        ar) echo arb ;; de) echo deu ;; el) echo ell ;; en) echo eng-US ;; es) echo spa ;;
        hi) echo hin ;; ru) echo rus ;; th) echo tha ;; tr) echo tur ;; vi) echo vie ;;
        zh) echo zho-CN ;;
    esac
}
laser_code() {
    case $1 in
        ar) echo ara ;; de) echo deu ;; el) echo ell ;; es) echo spa ;; hi) echo hin ;;
        ru) echo rus ;; th) echo tha ;; tr) echo tur ;; vi) echo vie ;; zh) echo cmn ;;
    esac
}
url_for() {
    local f=$1 b
    b=$(basename "$f")
    case $f in
        xquad-r/LICENSE) echo "$LAREQA_XQ/LICENSE" ;;
        xquad-r/*) echo "$LAREQA_XQ/$f" ;;
        mlqa-r/LICENSE) echo "$LAREQA_ML/LICENSE" ;;
        mlqa-r/*) echo "$LAREQA_ML/$f" ;;
        parallel/ntrex/LICENSE.md) echo "$NTREX/LICENSE.md" ;;
        parallel/ntrex/DOCUMENT_IDS.tsv) echo "$NTREX/DOCUMENT_IDS.tsv" ;;
        parallel/ntrex/*.txt) echo "$NTREX/NTREX-128/newstest2019-ref.$(ntrex_code "${b%.txt}").txt" ;;
        # two line-aligned files pasted into one TSV: see fetch()
        parallel/tatoeba/*-en.tsv) echo "tatoeba:${b%-en.tsv}" ;;
        spm-fixtures/botchan-en.model) echo "$SPM/test_model.model" ;;
        spm-fixtures/ja.model) echo "$SPM/test_ja_model.model" ;;
        spm-fixtures/LICENSE) echo "$GH/google/sentencepiece/raw/2734490/LICENSE" ;;
        native-qa/ar-arcd.json) echo "$GH/husseinmozannar/SOQAL/raw/1229d34/data/arcd.json" ;;
        native-qa/zh-cmrc2018-dev.json) echo "$GH/ymcui/cmrc2018/raw/c0eb1b6/squad-style-data/cmrc2018_dev.json" ;;
        native-qa/zh-cmrc2018-trial.json) echo "$GH/ymcui/cmrc2018/raw/c0eb1b6/squad-style-data/cmrc2018_trial.json" ;;
        native-qa/tr-tquad-train.json) echo "$GH/TQuad/turkish-nlp-qa-dataset/raw/3bece60/train-v0.1.json" ;;
        native-qa/tr-tquad-dev.json) echo "$GH/TQuad/turkish-nlp-qa-dataset/raw/3bece60/dev-v0.1.json" ;;
        *) ;;
    esac
}
download() { # download URL DEST
    if command -v curl >/dev/null; then
        curl -fsSL --retry 3 --connect-timeout 20 -o "$2" "$1"
    elif command -v wget >/dev/null; then
        wget -q -t 3 -T 20 -O "$2" "$1"
    else
        say "neither curl nor wget is installed"; return 1
    fi
}
fetch() { # fetch FILE TMP: downloads FILE's content into TMP
    local url
    url=$(url_for "$1")
    [ -n "$url" ] || return 1
    case $url in
        tatoeba:*)
            local l=${url#tatoeba:} c
            c=$(laser_code "$l")
            download "$LASER/tatoeba.$c-eng.$c" "$2.a" &&
                download "$LASER/tatoeba.$c-eng.eng" "$2.b" &&
                paste -d '\t' "$2.a" "$2.b" >"$2"
            local rc=$?
            rm -f "$2.a" "$2.b"
            return $rc ;;
        *) download "$url" "$2" ;;
    esac
}
sum_ok() { # sum_ok PATH SHA
    [ -f "$1" ] && [ "$(sha256sum <"$1" | cut -d' ' -f1)" = "$2" ]
}

MIRROR_ABS=""
if [ -d "$MIRROR" ]; then
    MIRROR_ABS=$(cd "$MIRROR" && pwd)
    say "mirror: $MIRROR_ABS"
else
    say "no mirror at $MIRROR (set DATA_MIRROR): downloading from the public repositories"
fi

mkdir -p "$DATA"
n_kept=0 n_linked=0 n_down=0 NET=unknown
missing_req=() missing_opt=()
while read -r sha f; do
    [ -n "$f" ] || continue
    dest="$DATA/$f"
    if sum_ok "$dest" "$sha"; then n_kept=$((n_kept + 1)); continue; fi
    mkdir -p "$(dirname "$dest")"
    rm -f "$dest"
    if [ -n "$MIRROR_ABS" ] && sum_ok "$MIRROR_ABS/$f" "$sha"; then
        if [ "$LINK" = 1 ] && ln -s "$MIRROR_ABS/$f" "$dest" 2>/dev/null; then :;
        else cp "$MIRROR_ABS/$f" "$dest.tmp.$$" && mv "$dest.tmp.$$" "$dest"; fi
        n_linked=$((n_linked + 1))
        continue
    fi
    [ -n "$MIRROR_ABS" ] && [ -e "$MIRROR_ABS/$f" ] && say "$MIRROR_ABS/$f: checksum mismatch, ignoring the mirror's copy"
    tmp="$dest.tmp.$$"
    if [ "${DATA_OFFLINE:-0}" = 1 ]; then
        why="not downloaded: DATA_OFFLINE=1"
    elif [ "$NET" = down ]; then
        why="not tried: an earlier download failed (no network?)"
    elif fetch "$f" "$tmp" 2>/dev/null && sum_ok "$tmp" "$sha"; then
        mv "$tmp" "$dest"
        n_down=$((n_down + 1))
        say "downloaded $f"
    elif [ -s "$tmp" ]; then why="checksum mismatch"
    elif [ -z "$(url_for "$f")" ]; then why="no public copy (mirror only)"
    else why="download failed"; NET=down
    fi
    if [ ! -f "$dest" ]; then
        rm -f "$tmp"
        case $f in
            xquad-r/*|mlqa-r/*) missing_req+=("$f ($why)") ;;
            *) missing_opt+=("$f ($why)") ;;
        esac
    fi
done <"$SUMS"

say "$DATA: $n_kept files kept, $n_linked from the mirror, $n_down downloaded"
if [ ${#missing_opt[@]} -gt 0 ]; then
    say "warning: ${#missing_opt[@]} optional files unavailable (the experiment does not need them):"
    for m in "${missing_opt[@]}"; do say "  $m"; done
fi
if [ ${#missing_req[@]} -gt 0 ]; then
    say "error: ${#missing_req[@]} required evaluation files unavailable:"
    for m in "${missing_req[@]}"; do say "  $m"; done
    say "put a copy of the data sets in a folder and run: DATA_MIRROR=/path/to/folder make data"
    exit 1
fi
