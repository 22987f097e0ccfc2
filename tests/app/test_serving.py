"""How the dashboard is served by default: `streamlit run app.py` from the repository listens on loopback only."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the LISTEN sockets on ``port`` (from /proc/net/tcp and tcp6), as hex strings."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":          # 0A: LISTEN
                found.add(address)
    return found


def test_the_dashboard_listens_on_localhost_only_by_default(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(tmp_path / "streamlit.log", "wb")
    server = subprocess.Popen(                      # no --server.address: .streamlit/config.toml decides
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env={**os.environ, "RECEXP_HOME": str(tmp_path / "ws"), "PYTHONPATH": str(ROOT)},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "streamlit.log").read_text()
                time.sleep(0.5)
        addresses = _listening_addresses(port)
        loopback = {"0100007F", "00000000000000000000000001000000"}          # 127.0.0.1 and ::1
        assert addresses and addresses <= loopback, addresses
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
