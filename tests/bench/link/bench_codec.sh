#!/bin/sh
# Bytes per stanza for the peer link's codecs on the link benchmark's
# conversation (bench_codec.c says how each codec runs).  Run from the
# top of a built tree:  sh tests/bench/link/bench_codec.sh
set -eu
top=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/bench_codec" "$top/tests/bench/link/bench_codec.c" \
    "$top/core/sw_link_zdict.c" "$top/core/sw_link_dict.c" \
    -I"$top" -I"$top/core" -I"$top/core/include" \
    $(pkg-config --cflags --libs zlib libzstd libuv)
/usr/bin/python3 - "$top" > "$work/stanzas" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/bench/link")
import bench_link as b
frm, to = "alice@a.example/ship", "bob@b.example"
for i in range(100):
    for s in (b.composing(to, i), b.chat(to, "m%d" % i, b.body(i))):
        print(s.replace("<message ", "<message from='%s' " % frm, 1))
    if i % 10 == 9:
        print(b.chat("alice@a.example", "r%d" % i, b.body(1000 + i))
              .replace("<message ", "<message from='bob@b.example/shore' ", 1))
PY
"$work/bench_codec" < "$work/stanzas"
