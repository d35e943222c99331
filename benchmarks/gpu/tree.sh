#!/usr/bin/env bash
# Keep the bundled weights (62 MiB) out of a device call: a call carries at most 64 MiB of working
# tree, and a deleted tracked file does not travel.
#
#   bash benchmarks/gpu/tree.sh park      before a device call: move the weights aside, show what travels
#   bash benchmarks/gpu/tree.sh restore   after it: put them back exactly (git checkout) and verify them
set -euo pipefail
cd "$(dirname "$0")/../.."
weights=(Resources/Model/*.safetensors)
aside=${LIVERTUMORSEG_WEIGHTS_ASIDE:-$HOME/.cache/livertumorseg-weights-aside}
case ${1:-} in
  park)
    mkdir -p "$aside"
    for w in "${weights[@]}"; do [ -f "$w" ] && mv "$w" "$aside/"; done
    echo "weights parked in $aside; the tracked and untracked files that travel:"
    git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -n 1 |
      awk '{printf "  %.1f MiB (limit 64 MiB, carried paths included)\n", $1 / 1048576}'
    ;;
  restore)
    git checkout -- Resources/Model/
    python3 - <<'PY'
import hashlib, json, pathlib
card = json.loads(pathlib.Path("Resources/Model/model_card.json").read_text())
path = pathlib.Path("Resources/Model") / card["weights_file"]
ok = hashlib.sha256(path.read_bytes()).hexdigest() == card["weights_sha256"]
print(f"{path}: {'restored, SHA-256 matches the card' if ok else 'SHA-256 MISMATCH'}")
raise SystemExit(0 if ok else 1)
PY
    ;;
  *) echo "usage: bash benchmarks/gpu/tree.sh park|restore"; exit 2 ;;
esac
