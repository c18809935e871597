#!/usr/bin/env bash
# The HTML report in a real browser (README, "Reports a person reads"):
# renders a failing run's page and a hostile history's page in headless
# Chromium, and checks what the browser drew, not what the file says:
# - the DOM after parsing holds one bar per operation of the history, and
#   the linearizability violation's highlighted operation, and the message
#   sequence's arrows;
# - the screenshot shows the operations' colours and the highlight's red;
# - a history value `<script>...` or `"><img onerror=...>` is text: no
#   script or image element appears and the page's title is untouched.
# Installs Debian's chromium if it is missing. Needs target/release/faultline.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "browser-check: installing chromium from the distribution's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
faultline=target/release/faultline

# A violation of linearizability (seed 1 of lost-update shows one).
"$faultline" run scenarios/register/lost-update.toml --seed 1 --html "$out/run.html" \
  --report "$out/run.json" >/dev/null || true
"$faultline" run scenarios/register/lost-update.toml --seed 1 --html "$out/again.html" >/dev/null || true
cmp "$out/run.html" "$out/again.html" # byte-stable
"$faultline" check tests/data/html/hostile.jsonl --model register --html "$out/hostile.html" >/dev/null || true

browse() {
  # Flags as this machine's Chromium needs them headless, as root, offline.
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$out/profile-$RANDOM" --window-size=1400,1000 "$@" 2>/dev/null
}
browse --dump-dom "file://$out/run.html" >"$out/run.dom"
browse --screenshot="$out/run.png" "file://$out/run.html" >/dev/null
browse --dump-dom "file://$out/hostile.html" >"$out/hostile.dom"

python3 - "$out" <<'PY'
import json, re, struct, sys, zlib

out = sys.argv[1]
report = json.load(open(f"{out}/run.json"))
assert report["outcome"] == "violation", report["outcome"]
dom = open(f"{out}/run.dom").read()

# One bar per invocation in the full timeline; the window repeats some.
sections = dom.split("<h2>Around the violation</h2>")
assert len(sections) == 2, "the page has the evidence window"
bars = len(re.findall(r'<g class="op ', sections[0]))
# The history's invocations are half its events when every one completed.
invocations = report["history_events"] // 2
assert bars == invocations, f"drew {bars} bars for {invocations} operations"
stuck = re.findall(r'<g class="op [a-z]+ stuck" data-op="(\d+)"', dom)
violation = report["linearizability"]["partitions"][0]["violation"]
assert str(violation["stuck"]["op"]) in stuck, f"the stuck op is highlighted: {stuck}"
print(f"browser-check: {bars} operation bars, stuck op {violation['stuck']['op']} highlighted")

# The message sequence: an arrow per message the world logged before the
# violation, at most 150, each a line the browser laid out.
arrows = re.findall(r'<g class="msg (delivered|dropped)"><title>', dom)
sent = report["stats"]["sent"] + report["stats"]["duplicated"]
assert 0 < len(arrows) <= min(150, sent), f"{len(arrows)} message arrows for {sent} messages"
assert "<marker" in dom, "arrowheads are defined"
print(f"browser-check: {len(arrows)} message arrows ({arrows.count('dropped')} dropped)")

def pixels(path):
    """RGB(A) rows of a PNG, stdlib only (8-bit, colour types 2 and 6)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return rows, bpp

rows, bpp = pixels(f"{out}/run.png")
colours = {}
for line in rows:
    for i in range(0, len(line), bpp):
        rgb = tuple(line[i:i + 3])
        colours[rgb] = colours.get(rgb, 0) + 1
ok_green = colours.get((0x9f, 0xd4, 0x9f), 0)
stuck_red = colours.get((0xe0, 0x10, 0x3a), 0)
assert ok_green > 500, f"ok bars drawn: {ok_green} pixels"
assert stuck_red > 20, f"the stuck op's outline (#e0103a, used nowhere else) drawn: {stuck_red} pixels"
print(f"browser-check: screenshot has {ok_green} ok-green and {stuck_red} highlight-red pixels")

hostile = open(f"{out}/hostile.dom").read()
assert "pwned" in hostile, "the hostile values are on the page, as text"
assert not re.search(r"<script", hostile), "no script element"
assert not re.search(r"<img", hostile), "no image element"
title = re.search(r"<title>(.*?)</title>", hostile).group(1)
assert "pwned" not in title, f"the title is untouched: {title}"
print("browser-check: hostile values shown as text, nothing ran")
PY
