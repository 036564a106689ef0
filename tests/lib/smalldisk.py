"""smalldisk.py - a server's home on a small disk that the driver fills
and frees (DESIGN.md §8, a full disk), for tests/security/abuse_test.py and
tests/follower/disk_test.py. Standard library only.

A driver calls private_mounts(MARK) before anything else: as root, with
unshare(1), it re-runs itself in a mount namespace of its own, so its
tmpfs mounts vanish with it whatever happens. SmallDisk(dirname, size_mib)
is then a tmpfs of that size at dirname, filled by a filler file; where
mounting is impossible (not root, no unshare, or MARK=0 in the
environment) it is a plain directory, and the server started with
SmallDisk.start gets RLIMIT_FSIZE at the size of its largest file (SIGXFSZ
ignored), which SQLite sees as EFBIG. SmallDisk.how says which."""
import errno
import os
import resource
import shutil
import subprocess
import sys

import service as S


def private_mounts(mark):
    """Re-run this driver in a private mount namespace when it can (and
    exit with its code); os.environ[mark] is "1" there, "0" where it
    cannot."""
    if os.environ.get(mark) is not None:
        return
    if os.geteuid() == 0 and shutil.which("unshare") and \
            subprocess.run(["unshare", "-m", "true"],
                           stderr=subprocess.DEVNULL).returncode == 0:
        env = dict(os.environ)
        env[mark] = "1"
        sys.exit(subprocess.run(["unshare", "-m", "--propagation", "private",
                                 sys.executable] + sys.argv,
                                env=env).returncode)
    os.environ[mark] = "0"


def fill(dirname):
    """Write a file in dirname until the filesystem has no room left; its
    path."""
    path = os.path.join(dirname, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            buf = b"\0" * chunk
            while True:
                try:
                    os.write(fd, buf)
                except OSError as e:
                    if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                        raise
                    break
    finally:
        os.close(fd)
    return path


class SmallDisk:
    """dirname on a tmpfs of size_mib when the driver runs in its own
    mount namespace (private_mounts(mark) said "1"), else a plain
    directory."""

    def __init__(self, dirname, size_mib, mark):
        self.dir = dirname
        os.makedirs(self.dir, exist_ok=True)
        self.mounted = False
        self.filler = None
        self.pid = None
        if os.environ.get(mark) == "1":
            self.mounted = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" %
                 size_mib, "tmpfs", self.dir],
                stderr=subprocess.DEVNULL).returncode == 0
        self.how = ("a %d MiB tmpfs in a private mount namespace" % size_mib
                    if self.mounted else
                    "RLIMIT_FSIZE on the server (no tmpfs: mounting is "
                    "impossible here, or %s=0)" % mark)

    def start(self, name, argv):
        """The server `agent-iam ARGV...` (a service.Proc): without a
        tmpfs, behind a shell that ignores SIGXFSZ (the trap is inherited
        through exec), so a write past the limit fails with EFBIG instead
        of killing it."""
        if self.mounted:
            P = S.Proc(name, argv)
        else:
            real = S.BIN
            try:
                S.BIN = "/bin/sh"
                P = S.Proc(name, ["-c", 'trap "" XFSZ; exec "$0" "$@"',
                                  real] + list(argv))
            finally:
                S.BIN = real
        self.pid = P.pid
        return P

    def make_full(self, home_dir):
        if self.mounted:
            self.filler = fill(self.dir)
        else:
            size = max(os.path.getsize(os.path.join(home_dir, f))
                       for f in os.listdir(home_dir)
                       if f.startswith("agent-iam.db"))
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE,
                             (size, resource.RLIM_INFINITY))

    def make_room(self):
        if self.mounted:
            os.unlink(self.filler)
        else:
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def close(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.dir])
            self.mounted = False
