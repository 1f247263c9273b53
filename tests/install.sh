#!/bin/sh
# `make install` puts the binary, man page and bash completion, the library, its header and the
# Python module where PREFIX, BINDIR, MANDIR and DESTDIR say, with the right modes; the installed
# binary runs and the installed module loads the installed library; `make uninstall` removes them all.
# Usage: install.sh   (from the checkout, after `make build`)
set -eu
d=$(mktemp -d /tmp/mkosi-sandbox-install.XXXXXX)
trap 'rm -rf "$d"' EXIT
pass=0 fail=0
check() { # description, then a command that must succeed
	what=$1; shift
	if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL install: $what"; fi
}
listing() { (cd "$d" && find . \( -type f -o -type l \) -printf '%P %m\n' | LC_ALL=C sort | tr '\n' ';'); }
py=/usr/bin/python3; [ -x $py ] || py=python3
pyusr=$($py tools/pythondir.py /usr); pylocal=$($py tools/pythondir.py /usr/local)
# The library's files under PREFIX $1, with Python's directory $2 (a link is listed with mode 777).
lib() {
	printf '%s\n' "${1#/}/include/mkosi-sandbox.h 644" "${1#/}/lib/libmkosi-sandbox.so 644" \
		"${2#/}/mkosi_sandbox/__init__.py 644" "${2#/}/mkosi_sandbox/libmkosi-sandbox.so 777"
}
make -s install DESTDIR="$d" PREFIX=/usr >/dev/null 2>&1
want=$( (printf '%s\n' "usr/bin/mkosi-sandbox 755" "usr/share/bash-completion/completions/mkosi-sandbox 644" \
	"usr/share/man/man1/mkosi-sandbox.1 644"; lib /usr "$pyusr") | LC_ALL=C sort | tr '\n' ';')
check "PREFIX=/usr layout" [ "$(listing)" = "$want" ]
check "the installed binary runs" sh -c "'$d/usr/bin/mkosi-sandbox' --version 2>&1 | grep -q ."
check "the installed man page is the project's" cmp -s doc/mkosi-sandbox.1 "$d/usr/share/man/man1/mkosi-sandbox.1"
check "the module's link names the installed library" \
	[ "$(readlink "$d$pyusr/mkosi_sandbox/libmkosi-sandbox.so")" = /usr/lib/libmkosi-sandbox.so ]
check "the installed module loads the installed library" env PYTHONPATH="$d$pyusr" \
	MKOSI_SANDBOX_LIBRARY="$d/usr/lib/libmkosi-sandbox.so" $py -c 'import mkosi_sandbox'
make -s uninstall DESTDIR="$d" PREFIX=/usr
check "uninstall removes every file" [ -z "$(listing)" ]
make -s install DESTDIR="$d" BINDIR=/opt/sbin MANDIR=/opt/man >/dev/null 2>&1
want=$( (printf '%s\n' "opt/man/man1/mkosi-sandbox.1 644" "opt/sbin/mkosi-sandbox 755" \
	"usr/local/share/bash-completion/completions/mkosi-sandbox 644"; lib /usr/local "$pylocal") | LC_ALL=C sort | tr '\n' ';')
check "BINDIR and MANDIR" [ "$(listing)" = "$want" ]
echo "install: $pass passed, $fail failed"
[ $fail = 0 ]
