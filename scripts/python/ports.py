#!/usr/bin/env python3
"""Free TCP ports for the scripts' servers: the one port picker of scripts/ and scripts/checks/.

    python3 scripts/python/ports.py N      prints N distinct free ports, space-separated

From shell, `free_ports N` (scripts/lib.sh) runs this; from Python, `from ports import
free_ports` (scripts/python/ is the script's own directory, hence on sys.path).

Each port is bound on 0.0.0.0, which Linux refuses while any local address holds the port, so it
is free on 127.0.0.1 and on the simulator's host addresses (127.0.0.11, ...) alike. The N
sockets are held together until all are chosen, so the ports are distinct, then closed: another
process may still take one before the caller binds it, as with any port picked in advance.

Standard library only.
"""

from __future__ import annotations

import socket
import sys


def free_ports(n: int) -> list[int]:
    """N distinct TCP ports, free on every local address right now."""
    held = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(s)
            s.bind(("0.0.0.0", 0))
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit() or int(argv[1]) < 1:
        print(f"usage: {argv[0]} N   (N >= 1 free TCP ports)", file=sys.stderr)
        return 2
    print(*free_ports(int(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
