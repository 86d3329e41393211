"""The seccomp filter bwrap installs: deny what a grader never needs and an escape would.

Built with libseccomp (through ``pyseccomp``), exported as a BPF program that
``bwrap --seccomp FD`` loads. Default allow, with deny rules for: sockets other
than AF_UNIX, io_uring, ptrace and cross-process memory access, bpf,
perf_event_open, userfaultfd, keyrings, mount/umount/pivot_root, unshare/setns,
clone with namespace flags, clone3 (glibc falls back to clone, which is checked),
kexec, module loading, personality, and TIOCSTI/TIOCLINUX ioctls.

The docker backend loads the same rules as a Docker seccomp profile
(``docker_seccomp_profile``): Docker's default profile allows ``ptrace`` and
``process_vm_*`` on recent kernels, and a forked sample must not reach its worker.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import tempfile

__all__ = ["DENIED_SYSCALLS", "docker_seccomp_profile", "seccomp_bpf_fd"]

DENIED_SYSCALLS = (
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ptrace",
    "pidfd_getfd",
    "kcmp",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "mount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "personality",
    "open_by_handle_at",
    "name_to_handle_at",
    "fsopen",
    "fsmount",
    "move_mount",
    "open_tree",
)
_NS_FLAGS = (0x10000000, 0x20000000, 0x04000000, 0x08000000, 0x40000000, 0x00020000, 0x02000000)
# CLONE_NEWUSER, NEWPID, NEWUTS, NEWIPC, NEWNET, NEWNS, NEWCGROUP


def seccomp_bpf_fd() -> int:
    """A readable fd (at offset 0) holding the compiled filter; the caller closes it."""
    import pyseccomp as sc

    flt = sc.SyscallFilter(defaction=sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        try:
            flt.add_rule(deny, name)
        except (RuntimeError, ValueError, OSError):  # syscall unknown on this arch
            continue
    flt.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
    for flag in _NS_FLAGS:
        flt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    # bwrap has no cgroup: memfd pages are counted by no rlimit (RLIMIT_AS only
    # when mapped), so memfds could hold any amount of host memory. Docker's
    # cgroup counts them, so its profile keeps memfd_create.
    flt.add_rule(deny, "memfd_create")
    for request in (0x5412, 0x541C):  # TIOCSTI, TIOCLINUX
        flt.add_rule(deny, "ioctl", sc.Arg(1, sc.EQ, request))
    handle = tempfile.TemporaryFile()
    flt.export_bpf(handle)
    handle.flush()
    fd = os.dup(handle.fileno())
    handle.close()
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def docker_seccomp_profile() -> str:
    """The rules above as a Docker seccomp profile (JSON text for ``--security-opt seccomp=``).

    Default allow like the bwrap filter; Docker's own allow-list is replaced, so
    every rule of that list that matters here is one of ours (the rest need
    capabilities, all of which the container drops)."""
    eperm = {"action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM}
    rules: list[dict[str, object]] = [{"names": list(DENIED_SYSCALLS), **eperm}]
    rules += [
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EAFNOSUPPORT,
            "args": [{"index": 0, "value": socket.AF_UNIX, "op": "SCMP_CMP_NE"}],
        },
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
    ]
    for flag in _NS_FLAGS:
        rules.append(
            {
                "names": ["clone"],
                **eperm,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }
        )
    for request in (0x5412, 0x541C):
        rules.append(
            {"names": ["ioctl"], **eperm, "args": [{"index": 1, "value": request, "op": "SCMP_CMP_EQ"}]}
        )
    return json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
