"""A real smarthost on loopback: a private Postfix instance whose smtpd requires STARTTLS and
SMTP AUTH (checked by a private Dovecot through its auth socket), and relays what it accepts to
a receiving MTA of the test's (`relayhost`).

Three listeners share the instance: STARTTLS (TLS and AUTH required), implicit TLS (the
"submissions" wrapper mode, AUTH required) and one without TLS or AUTH, which stands for a relay
that does not offer what we require. `refused@…` gets `550 5.1.1` at RCPT from the relay itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.serve import free_port

POSTFIX = Path("/usr/sbin/postfix")
DOVECOT = Path("/usr/sbin/dovecot")
RELAY_HOSTNAME = "relay.mailmark.test"
RELAY_USER = "relay-user@acme.test"
RELAY_PASSWORD = "correct horse battery staple"
START_TIMEOUT = 60.0

# Every unix service Postfix needs to accept, queue and relay mail, none chrooted (a chroot in
# the temp queue directory would lack /etc/services and the NSS libraries).
_UNIX_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def skip_without_peers() -> None:
    """Skip (locally) when Postfix or Dovecot is missing; CI installs both (.ci/run)."""
    if not POSTFIX.exists():
        pytest.skip("needs Postfix (Debian package postfix)")
    if not DOVECOT.exists():
        pytest.skip("needs Dovecot's auth server (Debian package dovecot-core)")
    if os.geteuid() != 0:
        pytest.skip("needs root: `postfix start` runs its master process as root")


@dataclass
class PostfixRelay:
    root: Path
    starttls_port: int
    implicit_tls_port: int
    plain_port: int

    @property
    def log(self) -> str:
        texts = []
        for name in ("postfix.log", "dovecot.log"):
            with contextlib.suppress(OSError):
                texts.append((self.root / name).read_text(errors="replace"))
        return "\n".join(texts)


def _dovecot_conf(root: Path) -> str:
    return f"""\
protocols = none
base_dir = {root}/dovecot/run
state_dir = {root}/dovecot/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/dovecot/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {root}/auth/postfix {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
"""


def _main_cf(root: Path, cert: Path, key: Path, next_hop_port: int) -> str:
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(root / "queue"),
        "data_directory": str(root / "data"),
        "myhostname": RELAY_HOSTNAME,
        "mydomain": "mailmark.test",
        "myorigin": "$myhostname",
        "mydestination": "",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        # Loopback is not trusted: only an authenticated client may relay.
        "mynetworks": "192.0.2.1/32",
        "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
        "smtpd_recipient_restrictions": (
            f"check_recipient_access texthash:{root}/config/recipients, "
            "permit_sasl_authenticated, reject"
        ),
        "smtpd_tls_cert_file": str(cert),
        "smtpd_tls_key_file": str(key),
        "smtpd_tls_security_level": "encrypt",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": str(root / "auth" / "postfix"),
        # AUTH is offered only once TLS is up.
        "smtpd_tls_auth_only": "yes",
        "smtpd_peername_lookup": "no",
        # Everything it accepts goes on to the test's receiving MTA.
        "relayhost": f"[127.0.0.1]:{next_hop_port}",
        "smtp_tls_security_level": "none",
        "smtp_host_lookup": "native",
        "smtp_dns_support_level": "disabled",
        "local_recipient_maps": "",
        "alias_maps": "",
        "alias_database": "",
        "maillog_file": str(root / "postfix.log"),
        "maillog_file_prefixes": str(root),
        "biff": "no",
        "append_dot_mydomain": "no",
        "readme_directory": "no",
        "in_flow_delay": "0s",
        "queue_run_delay": "1s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
    }
    return "".join(f"{name} = {value}\n" for name, value in settings.items())


def _master_cf(starttls: int, implicit: int, plain: int) -> str:
    return (
        f"127.0.0.1:{starttls} inet n - n - - smtpd\n"
        f"127.0.0.1:{implicit} inet n - n - - smtpd\n"
        "  -o smtpd_tls_wrappermode=yes\n"
        f"127.0.0.1:{plain} inet n - n - - smtpd\n"
        "  -o smtpd_tls_security_level=none\n"
        "  -o smtpd_sasl_auth_enable=no\n" + _UNIX_SERVICES
    )


def _postfix(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAIL_")}
    return subprocess.run(
        [str(POSTFIX), "-c", str(config), *args],
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _wait_for(port: int, what: str, relay: PostfixRelay) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} does not listen on 127.0.0.1:{port}:\n{relay.log}")
        time.sleep(0.1)


def _instance_pids(config: Path) -> list[int]:
    """The instance's processes: MAIL_CONFIG=<its config dir> is in their environment."""
    marker = f"MAIL_CONFIG={config}".encode()
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                pids.append(int(pid))
    return pids


@contextlib.contextmanager
def postfix_relay(cert: Path, key: Path, next_hop_port: int) -> Iterator[PostfixRelay]:
    """Start Dovecot's auth server and Postfix in a temp dir; stop both (by PID) and remove it."""
    skip_without_peers()
    root = Path(tempfile.mkdtemp(prefix="mailmark-relay-"))
    # Postfix's and Dovecot's unprivileged processes must reach their files.
    root.chmod(0o755)
    config = root / "config"
    for directory in (config, root / "queue", root / "dovecot", root / "auth"):
        directory.mkdir(mode=0o755)
    relay = PostfixRelay(root, free_port(), free_port(), free_port())
    # smtpd reads the certificate and its key as root, before it drops privileges.
    (root / "dovecot" / "users").write_text(f"{RELAY_USER}:{RELAY_PASSWORD}\n")
    (config / "recipients").write_text("refused@remote.test 550 5.1.1 No such user at the relay\n")
    (config / "main.cf").write_text(_main_cf(root, cert, key, next_hop_port))
    (config / "master.cf").write_text(
        _master_cf(relay.starttls_port, relay.implicit_tls_port, relay.plain_port)
    )
    dovecot: subprocess.Popen[bytes] | None = None
    started = False
    try:
        (root / "dovecot.conf").write_text(_dovecot_conf(root))
        dovecot = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        check = _postfix(config, "check")
        if check.returncode != 0:
            raise RuntimeError(f"postfix check failed: {check.stderr}{check.stdout}\n{relay.log}")
        started = True
        start = _postfix(config, "start")
        if start.returncode != 0:
            raise RuntimeError(f"postfix start failed: {start.stderr}{start.stdout}\n{relay.log}")
        for port in (relay.starttls_port, relay.implicit_tls_port, relay.plain_port):
            _wait_for(port, "postfix smtpd", relay)
        deadline = time.monotonic() + START_TIMEOUT
        while not (root / "auth" / "postfix").exists():
            if dovecot.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dovecot's auth socket did not appear:\n{relay.log}")
            time.sleep(0.05)
        yield relay
    finally:
        try:
            if started:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    _postfix(config, "stop")
                for pid in _instance_pids(config):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            if dovecot is not None and dovecot.poll() is None:
                dovecot.terminate()
                try:
                    dovecot.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    dovecot.kill()
                    dovecot.wait()
        finally:
            shutil.rmtree(root, ignore_errors=True)
