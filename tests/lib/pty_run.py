#!/usr/bin/env python3
"""Run a command on a terminal: its stdin, stdout and stderr a new pty.

Usage: pty_run.py OUTFILE COMMAND [ARG...]
Writes everything the command printed to OUTFILE (the terminal's bytes,
CRLF line ends and \\r as written) and exits with the command's status
(124 if it ran past 30 s, then it is killed)."""
import os
import pty
import select
import subprocess
import sys
import time


def main():
    out_path, cmd = sys.argv[1], sys.argv[2:]
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    got = bytearray()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer is gone
                break
            if not chunk:
                break
            got += chunk
        elif proc.poll() is not None:
            break
    try:  # EIO can come before the exit: wait what is left of the 30 s
        status = proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        status = 124
    os.close(master)
    with open(out_path, "wb") as f:
        f.write(bytes(got))
    sys.exit(status)


if __name__ == "__main__":
    main()
