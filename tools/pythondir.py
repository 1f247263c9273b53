#!/usr/bin/python3
"""Where a pure-Python module installed under PREFIX is found by this Python (make install's
PYTHONDIR). Usage: pythondir.py PREFIX

Debian's Python looks in /usr/lib/python3/dist-packages (PREFIX=/usr) and
/usr/local/lib/python3.X/dist-packages (PREFIX=/usr/local); elsewhere the posix_prefix scheme's
PREFIX/lib/python3.X/site-packages.
"""
import sys
import sysconfig

prefix = sys.argv[1].rstrip("/") or "/"
schemes = sysconfig.get_scheme_names()
if prefix == "/usr" and "deb_system" in schemes:
    print(sysconfig.get_path("purelib", "deb_system"))
elif prefix == "/usr/local" and "posix_local" in schemes:
    print(sysconfig.get_path("purelib", "posix_local"))
else:
    print(sysconfig.get_path("purelib", "posix_prefix", vars={"base": prefix, "platbase": prefix}))
