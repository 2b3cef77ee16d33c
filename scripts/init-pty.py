#!/usr/bin/env python3
"""Drives `certeasy init` (interactive mode) through a pseudo-terminal.

    python3 scripts/init-pty.py [target/debug/certeasy]

Works on a private copy of the binary (the shared target directory's one may
be rebuilt by another branch meanwhile). Answers a few prompts, takes the
defaults of the others, types one invalid listen address (which must be
refused with a message and asked again) and a CA key password (which must not
be echoed); then checks that the configuration was written, that the password
file is mode 0600 and holds the password, and that `certeasy validate`
accepts the configuration. Prints `init-pty: N passed, M failed`.
"""

import os
import pty
import re
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import fcntl
import time

# Failure deadline of one expected prompt (not a synchronisation delay: the
# script proceeds as soon as the text appears).
DEADLINE = 60.0
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Session:
    def __init__(self, argv, cwd):
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(cwd)
            os.environ["TERM"] = "xterm"
            os.execv(argv[0], argv)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
        self.pid, self.fd = pid, fd
        self.buf = b""
        self.pos = 0

    def _read(self, until):
        r, _, _ = select.select([self.fd], [], [], max(0.0, until - time.monotonic()))
        if not r:
            return False
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        if not data:
            raise EOFError
        self.buf += data
        return True

    def expect(self, text):
        """Waits for `text` after what was already matched."""
        until = time.monotonic() + DEADLINE
        needle = text.encode()
        while True:
            clean = ANSI.sub(b"", self.buf)
            i = clean.find(needle, self.pos)
            if i >= 0:
                self.pos = i + len(needle)
                return
            try:
                got = self._read(until)
            except EOFError:
                raise AssertionError(f"the program ended before {text!r}; output:\n{self.text()}")
            if not got:
                raise AssertionError(f"no {text!r} within {DEADLINE}s; output:\n{self.text()}")

    def wait_no_echo(self):
        """Waits until the program has turned the terminal's echo off (a
        password prompt): typed earlier, the line discipline would echo it.
        tcgetattr on the master reads the pseudo-terminal's settings; there
        is no event for a change of them, so they are polled."""
        until = time.monotonic() + DEADLINE
        while termios.tcgetattr(self.fd)[3] & termios.ECHO:
            if time.monotonic() > until:
                raise AssertionError(f"echo still on after {DEADLINE}s; output:\n{self.text()}")
            time.sleep(0.01)

    def send(self, line):
        os.write(self.fd, line.encode() + b"\r")

    def wait(self):
        """Reads to the end; returns the exit code."""
        while True:
            try:
                self._read(time.monotonic() + DEADLINE)
            except EOFError:
                break
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def text(self):
        return ANSI.sub(b"", self.buf).decode(errors="replace")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "certeasy")
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "certeasy")
        shutil.copy2(src, binary)
        helps = subprocess.run([binary, "init", "--help"], capture_output=True, text=True)
        if helps.returncode != 0:
            print(f"{src} has no init subcommand (rebuilt by another branch?):\n{helps.stderr}")
            print("init-pty: 0 passed, 1 failed")
            return 1
        cases = [("builtin CA, defaults, a refused listen address", case_builtin)]
        for name, case in cases:
            work = tempfile.mkdtemp(dir=tmp)
            try:
                case(binary, work)
                print(f"ok   {name}")
                passed += 1
            except AssertionError as e:
                print(f"FAIL {name}: {e}")
                failed += 1
    print(f"init-pty: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def case_builtin(binary, work):
    config = os.path.join(work, "config.yml")
    s = Session([binary, "init", "-f", config], work)
    password = "pty-Secret-4711"
    try:
        s.expect("Listen address (ip:port) [0.0.0.0:8443]: ")
        s.send("localhost:9446")
        s.expect("error: ")
        s.expect("not ip:port")
        s.expect("Listen address (ip:port) [0.0.0.0:8443]: ")
        s.send("127.0.0.1:9446")
        s.expect("Public URL of the server (https://host[:port]) [https://localhost:9446]: ")
        s.send("")
        s.expect("Working directory")
        s.send("")
        s.expect("SQLite database file")
        s.send("")
        s.expect("Certificate authority (builtin/adcs) [builtin]: ")
        s.send("")
        s.expect("Built-in CA common name")
        s.send("pty test CA")
        s.expect("Built-in CA key type")
        s.send("")
        s.expect("Password encrypting the CA keys")
        s.wait_no_echo()
        s.send(password)
        s.expect("Repeat it")
        s.wait_no_echo()
        s.send(password)
        s.expect("DNS zones certificates may be issued in (comma-separated) [localhost]: ")
        s.send("pty.test")
        s.expect("Labels allowed in front of a zone")
        s.send("")
        s.expect("Allow wildcard certificates (yes/no) [no]: ")
        s.send("yes")
        s.expect("Networks the server may connect to")
        s.send("")
        s.expect("HTTPS certificate of the listener")
        s.send("")
        s.expect("Configuration written to")
        code = s.wait()
    finally:
        try:
            os.kill(s.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    out = s.text()
    assert code == 0, f"exit {code}; output:\n{out}"
    assert password not in out, f"the password was echoed:\n{out}"
    for want in ("certeasy validate -f", "certeasy serve -f", "ca/root.pem"):
        assert want in out, f"{want!r} missing from:\n{out}"
    secret = os.path.join(work, "config.ca-password")
    mode = stat.S_IMODE(os.stat(secret).st_mode)
    assert mode == 0o600, f"{secret} is mode {mode:o}"
    with open(secret) as f:
        assert f.read() == password + "\n"
    with open(config) as f:
        yaml = f.read()
    assert password not in yaml
    for want in ('"127.0.0.1:9446"', '"pty test CA"', '".pty.test/3"', '"*.pty.test"'):
        assert want in yaml, f"{want} missing from:\n{yaml}"
    v = subprocess.run([binary, "validate", "-f", config], capture_output=True, text=True)
    assert v.returncode == 0, f"validate: exit {v.returncode}: {v.stdout}{v.stderr}"
    # A second run refuses to overwrite, before asking anything.
    again = subprocess.run([binary, "init", "--script", "-f", config], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
    assert again.returncode == 2, f"second run: exit {again.returncode}"
    assert "--force" in again.stdout + again.stderr


if __name__ == "__main__":
    sys.exit(main())
