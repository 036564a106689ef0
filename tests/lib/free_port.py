#!/usr/bin/env python3
"""A TCP port on 127.0.0.1 that is free now, for a server started with an
explicit --port (or restarted on the port it had): chosen at random below
the kernel's ephemeral range, so that no outgoing connection and no
server started with --port 0 takes it before the server binds it. Run as
a script it prints one; `free_port()` when imported."""
import secrets
import socket
import sys


def free_port(host="127.0.0.1"):
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = secrets.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        s = socket.socket()
        try:
            s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port below %d" % low)


if __name__ == "__main__":
    print(free_port(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"))
