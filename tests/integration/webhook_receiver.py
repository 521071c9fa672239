#!/usr/bin/env python3
"""A webhook receiver for femtoguard's tests: HTTPS (or plain HTTP without
--cert), records every POST as one JSON line in OUT with the alert id header,
whether X-Femtoguard-Signature verified against the secret file, and the body.

usage: webhook_receiver.py PORT SECRET_FILE OUT [--cert CERT --key KEY] [--status N]
"""
import argparse
import hashlib
import hmac
import http.server
import json
import ssl
import sys


def verify(secret: bytes, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    mac = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("secret_file")
    ap.add_argument("out")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--status", type=int, default=200)
    args = ap.parse_args()
    secret = open(args.secret_file, "rb").read().strip()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            rec = {
                "path": self.path,
                "id": self.headers.get("X-Femtoguard-Alert-Id", ""),
                "signature": self.headers.get("X-Femtoguard-Signature", ""),
                "sig_ok": verify(secret, self.headers.get("X-Femtoguard-Signature", ""), body),
                "content_type": self.headers.get("Content-Type", ""),
                "body": body.decode("utf-8", "replace"),
            }
            with open(args.out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            self.send_response(args.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("listening", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
