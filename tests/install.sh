#!/bin/sh
# `make install` puts the binary, man page and bash completion where PREFIX, BINDIR, MANDIR and
# DESTDIR say, with the right modes; the installed binary runs; `make uninstall` removes them all.
# Usage: install.sh   (from the checkout, after `make build`)
set -eu
d=$(mktemp -d /tmp/mkosi-sandbox-install.XXXXXX)
trap 'rm -rf "$d"' EXIT
pass=0 fail=0
check() { # description, then a command that must succeed
	what=$1; shift
	if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL install: $what"; fi
}
listing() { (cd "$d" && find . -type f -printf '%P %m\n' | LC_ALL=C sort | tr '\n' ';'); }
make -s install DESTDIR="$d" PREFIX=/usr >/dev/null 2>&1
check "PREFIX=/usr layout" [ "$(listing)" = "usr/bin/mkosi-sandbox 755;usr/share/bash-completion/completions/mkosi-sandbox 644;usr/share/man/man1/mkosi-sandbox.1 644;" ]
check "the installed binary runs" sh -c "'$d/usr/bin/mkosi-sandbox' --version 2>&1 | grep -q ."
check "the installed man page is the project's" cmp -s doc/mkosi-sandbox.1 "$d/usr/share/man/man1/mkosi-sandbox.1"
make -s uninstall DESTDIR="$d" PREFIX=/usr
check "uninstall removes every file" [ -z "$(listing)" ]
make -s install DESTDIR="$d" BINDIR=/opt/sbin MANDIR=/opt/man >/dev/null 2>&1
check "BINDIR and MANDIR" [ "$(listing)" = "opt/man/man1/mkosi-sandbox.1 644;opt/sbin/mkosi-sandbox 755;usr/local/share/bash-completion/completions/mkosi-sandbox 644;" ]
echo "install: $pass passed, $fail failed"
[ $fail = 0 ]
