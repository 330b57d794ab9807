"""TLS of the front, tried for real (issue #20 point 10), by make test-apache-drills:

    python drills/tls_check.py TLS_PORT HTTP_PORT CA_FILE

against HAProxy (deploy/kiva-haproxy.cfg) listening on 127.0.0.1:TLS_PORT with a certificate
of the CA in CA_FILE, and its plain HTTP port HTTP_PORT. With `openssl s_client`: TLS 1.0
and 1.1 refused, TLS 1.3 accepted, and of every TLS 1.2 suite OpenSSL knows, only
forward-secret AEAD ones accepted (ECDHE or DHE key exchange, AES-GCM or ChaCha20-Poly1305:
Mozilla's "intermediate"); with requests: the API answering over HTTPS with the CA verified,
HSTS, and plain HTTP redirected to HTTPS.
"""

import shutil
import subprocess
import sys

import requests

HOST = "127.0.0.1"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def handshake(port: int, *args: str) -> bool:
    """Whether a handshake with these s_client options succeeds."""
    # SECLEVEL=0: the client itself allows anything, so a refusal is the server's
    res = subprocess.run(
        [OPENSSL, "s_client", "-connect", f"{HOST}:{port}", "-servername", "kiva.test", *args],
        input=b"",
        capture_output=True,
        timeout=10,
    )
    return res.returncode == 0 and b"Cipher is (NONE)" not in res.stdout and b"New, TLSv" in res.stdout


def main(tls_port: int, http_port: int, ca: str) -> int:
    problems = []
    for version in ("-tls1", "-tls1_1"):
        if handshake(tls_port, version, "-cipher", "ALL:@SECLEVEL=0"):
            problems.append(f"{version} accepted")
    if not handshake(tls_port, "-tls1_3"):
        problems.append("TLS 1.3 refused")
    every = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
    listed = subprocess.run([OPENSSL, "ciphers", "-v", every], capture_output=True, text=True, check=True)
    suites = [line.split() for line in listed.stdout.splitlines() if line.split()[1] != "TLSv1.3"]
    accepted = []
    for name, _version, kx, _au, enc, *_ in suites:
        if handshake(tls_port, "-tls1_2", "-cipher", f"{name}:@SECLEVEL=0"):
            accepted.append(name)
            forward_secret = kx in ("Kx=ECDH", "Kx=DH")
            aead = enc.startswith(("Enc=AESGCM", "Enc=CHACHA20/POLY1305"))
            if not (forward_secret and aead):
                problems.append(f"TLS 1.2 suite {name} ({kx} {enc}) accepted")
    print(f"tls: {len(suites)} TLS 1.2 suites tried, accepted: {' '.join(accepted)}")
    if not accepted:
        problems.append("no TLS 1.2 suite accepted")
    res = requests.get(f"https://{HOST}:{tls_port}/api/version", verify=ca, timeout=10)
    if res.status_code != 200 or res.json().get("app") != "kiva":
        problems.append(f"GET /version over HTTPS: {res.status_code} {res.text[:80]}")
    if "max-age=63072000" not in res.headers.get("Strict-Transport-Security", ""):
        problems.append(f"no HSTS: {dict(res.headers)}")
    res = requests.get(f"http://{HOST}:{http_port}/api/version", allow_redirects=False, timeout=10)
    if res.status_code != 301 or not res.headers.get("Location", "").startswith("https://"):
        problems.append(f"plain HTTP: {res.status_code} {res.headers.get('Location')}")
    for problem in problems:
        print(f"tls: {problem}", file=sys.stderr)
    print(f"tls: {'FAIL' if problems else 'passed'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
