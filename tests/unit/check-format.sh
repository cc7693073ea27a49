#!/bin/sh
# Every C source of ours follows .clang-format (STYLE.md point 8).
# TAP, one test per file; run by make check.
srcdir=${srcdir:-.}
cd "$srcdir" || exit 1
if ! command -v clang-format >/dev/null 2>&1; then
	echo "1..0 # SKIP clang-format is not installed"
	exit 0
fi
files=$(find common ipc supervisor frontend imaged fetch unpack launch netd runtimed bench tests/unit tests/fuzz \
	-name '*.[ch]' ! -name '*.pb-c.*' | sort)
n=0
for f in $files; do n=$((n + 1)); done
echo "1..$n"
i=0
for f in $files; do
	i=$((i + 1))
	if clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "ok $i - $f"
	else
		echo "not ok $i - $f (run: clang-format -i $f)"
	fi
done
