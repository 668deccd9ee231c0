#!/usr/bin/env python3
"""STOMP 1.2 smoke test of the test broker (stdlib only).

Checks over STOMP+SSL (CA = the broker's exported PEM, SNI/hostname "localhost"):
  1. CONNECT testkey/testsecret            -> CONNECTED version:1.2
  2. SUBSCRIBE ack:client-individual, activemq.prefetchSize:5 (with receipt)
  3. SEND to the queue (with receipt)      -> MESSAGE with an `ack` header and the body
  4. ACK id:<ack> (with receipt), DISCONNECT (with receipt)
  5. a new connection re-subscribes        -> no redelivery (the ACK took effect)
  6. CONNECT with a wrong passcode         -> ERROR frame
and, if --stomp-port is given (or ACTIVEMQ_STOMP_PORT is set), a CONNECT on the plain STOMP port.

Settings come from the environment written by `scripts/activemq.sh env DIR`:
SOAR_TEST_ACTIVEMQ_HOST, _PORT, _CAFILE, _LOGIN, _PASSCODE (overridable by options).
Exit status 0 when all checks pass, 1 otherwise (with a message saying which check failed).
"""

import argparse
import os
import socket
import ssl
import sys
import time
import uuid

TIMEOUT = 10.0


class SmokeError(Exception):
    pass


def _unescape(value):
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            out.append({"r": "\r", "n": "\n", "c": ":", "\\": "\\"}.get(value[i + 1], value[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _escape(value):
    return value.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace(":", "\\c")


class Conn:
    def __init__(self, sock, name):
        self.sock = sock
        self.name = name
        self.buf = b""

    def send(self, command, headers=None, body=b""):
        lines = [command]
        for k, v in (headers or {}).items():
            lines.append("%s:%s" % (_escape(k), _escape(str(v))) if command != "CONNECT" else "%s:%s" % (k, v))
        if body:
            lines.append("content-length:%d" % len(body))
        self.sock.sendall(("\n".join(lines) + "\n\n").encode("utf-8") + body + b"\0")

    def recv(self, timeout=TIMEOUT):
        """Next frame as (command, headers, body); None on timeout; skips heart-beat EOLs."""
        deadline = time.monotonic() + timeout
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            frame = self._parse()
            if frame is not None:
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return None
            if not data:
                raise SmokeError("%s: connection closed by the broker" % self.name)
            self.buf += data

    def _parse(self):
        end = self.buf.find(b"\n\n")
        end_r = self.buf.find(b"\r\n\r\n")
        if end < 0 and end_r < 0:
            return None
        if end_r >= 0 and (end < 0 or end_r < end):
            head, body_start = self.buf[:end_r].decode("utf-8"), end_r + 4
        else:
            head, body_start = self.buf[:end].decode("utf-8"), end + 2
        lines = head.replace("\r\n", "\n").split("\n")
        command, headers = lines[0], {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = _unescape(k)
            if k not in headers:  # STOMP 1.2: the first occurrence wins
                headers[k] = v if command == "CONNECTED" else _unescape(v)
        if "content-length" in headers:
            n = int(headers["content-length"])
            if len(self.buf) < body_start + n + 1:
                return None
            body, rest = self.buf[body_start:body_start + n], self.buf[body_start + n + 1:]
        else:
            nul = self.buf.find(b"\0", body_start)
            if nul < 0:
                return None
            body, rest = self.buf[body_start:nul], self.buf[nul + 1:]
        self.buf = rest
        return command, headers, body

    def expect(self, command, what, timeout=TIMEOUT):
        frame = self.recv(timeout)
        if frame is None:
            raise SmokeError("%s: %s: no frame within %.0fs (expected %s)" % (self.name, what, timeout, command))
        if frame[0] != command:
            raise SmokeError("%s: %s: expected %s, got %s %s %r" % (self.name, what, command, frame[0], frame[1], frame[2][:200]))
        return frame

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_conn(args, use_ssl, port, name):
    try:
        raw = socket.create_connection((args.host, port), timeout=TIMEOUT)
    except OSError as e:
        raise SmokeError("%s: cannot connect to %s:%s: %s" % (name, args.host, port, e))
    if not use_ssl:
        return Conn(raw, name)
    ctx = ssl.create_default_context(cafile=args.cafile)
    try:
        sock = ctx.wrap_socket(raw, server_hostname=args.sni)
    except (ssl.SSLError, OSError) as e:
        raw.close()
        raise SmokeError("%s: TLS handshake with %s:%s (CA %s, SNI %s) failed: %s" % (name, args.host, port, args.cafile, args.sni, e))
    return Conn(sock, name)


def connect(conn, args, passcode):
    conn.send("CONNECT", {"accept-version": "1.2", "host": args.sni, "login": args.login,
                          "passcode": passcode, "heart-beat": "0,0"})
    return conn.recv()


def log(msg):
    print("stomp_smoke: " + msg, flush=True)


def run(args):
    t0 = time.monotonic()
    queue = "soar.smoke.%s" % uuid.uuid4().hex[:12]
    body = ('{"smoke": "%s"}' % queue).encode("utf-8")

    # 1-4: full round trip over SSL
    c = open_conn(args, True, args.port, "stomp+ssl")
    log("TLS ok to %s:%s (%s, cert verified against %s, SNI %s)" % (args.host, args.port, c.sock.version(), args.cafile, args.sni))
    frame = connect(c, args, args.passcode)
    if frame is None or frame[0] != "CONNECTED":
        raise SmokeError("stomp+ssl: CONNECT as %s: expected CONNECTED, got %r" % (args.login, frame))
    h = frame[1]
    if h.get("version") != "1.2":
        raise SmokeError("stomp+ssl: CONNECTED without version:1.2: %s" % h)
    log("CONNECTED version:%s server:%s heart-beat:%s session:%s" % (h.get("version"), h.get("server"), h.get("heart-beat"), h.get("session")))

    c.send("SUBSCRIBE", {"destination": queue, "id": queue, "ack": "client-individual",
                         "activemq.prefetchSize": "5", "receipt": "sub-1"})
    c.expect("RECEIPT", "SUBSCRIBE %s" % queue)
    c.send("SEND", {"destination": queue, "correlation-id": "smoke-1", "receipt": "send-1"}, body)
    got_receipt = got_msg = None
    deadline = time.monotonic() + TIMEOUT
    while (got_receipt is None or got_msg is None) and time.monotonic() < deadline:
        frame = c.recv(max(0.1, deadline - time.monotonic()))
        if frame is None:
            break
        if frame[0] == "RECEIPT" and frame[1].get("receipt-id") == "send-1":
            got_receipt = frame
        elif frame[0] == "MESSAGE":
            got_msg = frame
        else:
            raise SmokeError("stomp+ssl: unexpected frame after SEND: %s %s %r" % frame)
    if got_receipt is None:
        raise SmokeError("stomp+ssl: no RECEIPT for SEND")
    if got_msg is None:
        raise SmokeError("stomp+ssl: no MESSAGE delivered for the SEND to %s" % queue)
    mh = got_msg[1]
    if got_msg[2] != body:
        raise SmokeError("stomp+ssl: MESSAGE body mismatch: %r" % got_msg[2])
    if not mh.get("ack"):
        raise SmokeError("stomp+ssl: MESSAGE has no ack header: %s" % mh)
    if mh.get("subscription") != queue:
        raise SmokeError("stomp+ssl: MESSAGE subscription %r != %r" % (mh.get("subscription"), queue))
    log("MESSAGE destination:%s message-id:%s ack:%s subscription:%s correlation-id:%s" % (
        mh.get("destination"), mh.get("message-id"), mh.get("ack"), mh.get("subscription"), mh.get("correlation-id")))
    c.send("ACK", {"id": mh["ack"], "receipt": "ack-1"})
    c.expect("RECEIPT", "ACK %s" % mh["ack"])
    c.send("DISCONNECT", {"receipt": "bye-1"})
    c.expect("RECEIPT", "DISCONNECT")
    c.close()
    log("SUBSCRIBE/SEND/MESSAGE/ACK/DISCONNECT ok (receipts received)")

    # 5: acked message must not be redelivered
    c = open_conn(args, True, args.port, "stomp+ssl (2)")
    frame = connect(c, args, args.passcode)
    if frame is None or frame[0] != "CONNECTED":
        raise SmokeError("stomp+ssl (2): reconnect failed: %r" % (frame,))
    c.send("SUBSCRIBE", {"destination": queue, "id": queue, "ack": "client-individual",
                         "activemq.prefetchSize": "5", "receipt": "sub-2"})
    c.expect("RECEIPT", "re-SUBSCRIBE")
    frame = c.recv(0.5)
    if frame is not None:
        raise SmokeError("stomp+ssl (2): acked message was redelivered or unexpected frame: %s %s" % (frame[0], frame[1]))
    c.send("DISCONNECT", {"receipt": "bye-2"})
    c.expect("RECEIPT", "DISCONNECT (2)")
    c.close()
    log("no redelivery after ACK")

    # 6: wrong password
    c = open_conn(args, True, args.port, "stomp+ssl (bad password)")
    frame = connect(c, args, args.passcode + "-wrong")
    c.close()
    if frame is None or frame[0] != "ERROR":
        raise SmokeError("stomp+ssl: CONNECT with a wrong passcode: expected ERROR, got %r" % (frame,))
    log("wrong passcode -> ERROR message:%s" % frame[1].get("message"))

    # plain STOMP port (optional)
    if args.stomp_port:
        c = open_conn(args, False, args.stomp_port, "stomp")
        frame = connect(c, args, args.passcode)
        if frame is None or frame[0] != "CONNECTED" or frame[1].get("version") != "1.2":
            raise SmokeError("stomp: CONNECT on plain port %s: expected CONNECTED version:1.2, got %r" % (args.stomp_port, frame))
        c.send("DISCONNECT", {"receipt": "bye-3"})
        c.expect("RECEIPT", "DISCONNECT (plain)")
        c.close()
        log("plain STOMP %s:%s CONNECTED version:1.2" % (args.host, args.stomp_port))

    log("OK in %.2fs" % (time.monotonic() - t0))


def main():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=env("SOAR_TEST_ACTIVEMQ_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env("SOAR_TEST_ACTIVEMQ_PORT", "61614")), help="STOMP+SSL port")
    p.add_argument("--stomp-port", type=int, default=int(env("ACTIVEMQ_STOMP_PORT", "0")) or None,
                   help="plain STOMP port to check too (default: $ACTIVEMQ_STOMP_PORT, else skipped)")
    p.add_argument("--cafile", default=env("SOAR_TEST_ACTIVEMQ_CAFILE"))
    p.add_argument("--login", default=env("SOAR_TEST_ACTIVEMQ_LOGIN", "testkey"))
    p.add_argument("--passcode", default=env("SOAR_TEST_ACTIVEMQ_PASSCODE", "testsecret"))
    p.add_argument("--sni", default="localhost", help="TLS server name / STOMP host header")
    args = p.parse_args()
    if not args.cafile:
        print("stomp_smoke: FAILED: no CA file (set SOAR_TEST_ACTIVEMQ_CAFILE or --cafile)", file=sys.stderr)
        return 1
    try:
        run(args)
    except SmokeError as e:
        print("stomp_smoke: FAILED: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
