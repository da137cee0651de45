#!/usr/bin/env python3
# bench/memprobe/probe.py: rounds of bad-input probes against a running `passage relay` on loopback, and after
# each round the relay's memory: RSS (/proc/PID/status, and by kind of mapping from /proc/PID/smaps), and, with
# --heapwalk, the live managed heap walked from the GC roots (bench/heapwalk) and what the GC has committed. Used to
# tell a leak (live heap growing with the number of probes) from a plateau (bench/RESULTS.md, "Memory under rounds of
# bad-input probes"). The heap walk's dump makes the relay's RSS jump: take RSS and heap figures in separate runs.
#
# Probes, cycled: on the plain CONNECT listener malformed and half-sent request heads, a SOCKS5 greeting, GET,
# a refused destination, an oversized head, an HTTP/2 preface with garbage or cut short, connect-and-vanish, reset; on
# the TLS CONNECT listener garbage, a truncated ClientHello, a SOCKS5 greeting, vanish, and a finished handshake
# followed by a bad request, by nothing, or (ALPN h2) by garbage; on the pass-through listener garbage, truncated and
# malformed ClientHellos, an unrouted name, vanish, reset; and working tunnels (CONNECT plain and TLS, pass-through)
# to an echo server of its own on --echo. Probes named timeout-* (only with --kinds) wait for the relay's own head or
# handshake timeout. Bounded: ROUNDS x PER_ROUND connections (at most 50 x 20,000), CONCURRENCY at once; all to
# 127.0.0.1.
#
# --until-closed N: no rounds and no memory figures; instead each kind (N connections of it, one after the other, N at
# most 20; the kinds side by side) sends its input and then reads until the relay closes the connection (end of stream or reset),
# for at most --close-limit seconds (default 30, at most 120), and one line per kind says how long the relay took to
# close after the input went out (median and max), how it closed and the start of what it answered. Kinds whose point
# is the client leaving (vanish, reset) and the working tunnels are left out; --pid and --admin are not needed.
#
# The relay's settings (ports free on 127.0.0.1; P the plain, T the TLS, S the pass-through, A the admin, E the echo):
#   { "relay": { "connect": ["127.0.0.1:T"], "connectPlain": ["127.0.0.1:P"], "passthrough": ["127.0.0.1:S"],
#                "routes": { "ok.test": "127.0.0.1:E" }, "allow": ["127.0.0.1:E"], "allowNetworks": ["127.0.0.1/32"],
#                "admin": "127.0.0.1:A" } }
# python3 probe.py --pid PID --plain P --tls T --passthrough S --admin A --echo E
#                  [--rounds 10] [--per-round 2000] [--concurrency 16] [--heapwalk PATH] [--kinds a,b,...]
# python3 probe.py --plain P --tls T --passthrough S --echo E --until-closed 3 [--kinds a,b,...] [--close-limit 30]
import argparse
import asyncio
import socket
import ssl
import struct
import subprocess
import sys
import time
import urllib.request


def unverified_context():
    """A client context that takes any certificate (the relay's is self-signed; what it presents is not probed)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_hello(name):
    """A real ClientHello record for server name NAME, as OpenSSL writes it."""
    ctx = unverified_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


HELLO = client_hello("nowhere.test")
HELLO_OK = client_hello("ok.test")
# The same hello with its handshake length 3 bytes too short: the extensions overrun it.
MALFORMED = HELLO[:6] + (int.from_bytes(HELLO[6:9], "big") - 3).to_bytes(3, "big") + HELLO[9:]
GARBAGE = b"\x00\x01garbage, not a protocol at all\r\n" * 4
TLS_CTX = unverified_context()
H2_CTX = unverified_context()
H2_CTX.set_alpn_protocols(["h2"])
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


async def close(writer):
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, ssl.SSLError):
        pass


async def read_until_closed(reader, limit):
    """Reads until the relay closes (end of stream or reset) or LIMIT seconds pass: (seconds, how, first bytes)."""
    started = time.monotonic()
    first = b""
    how = "open"
    try:
        while (left := limit - (time.monotonic() - started)) > 0:
            chunk = await asyncio.wait_for(reader.read(4096), left)
            if not chunk:
                how = "eof"
                break
            first = (first + chunk)[:256]
    except asyncio.TimeoutError:
        pass
    except (ConnectionError, ssl.SSLError):
        how = "reset"
    return time.monotonic() - started, how, first


# Set by --until-closed: every probe reads until the relay closes, for at most this many seconds, and returns
# what read_until_closed saw.
CLOSE_LIMIT = None


async def send_close(port, data, linger_reset=False, read=True, pause=0.0, until_closed=False):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if data:
            writer.write(data)
            await writer.drain()
        if CLOSE_LIMIT:
            return await read_until_closed(reader, CLOSE_LIMIT)
        if pause:
            await asyncio.sleep(pause)
        if read:
            try:
                # The relay's first answer (or its close); a timeout probe reads until the relay's own timeout closes it.
                while await asyncio.wait_for(reader.read(4096), 15.0 if until_closed else 2.0) and until_closed:
                    pass
            except (asyncio.TimeoutError, ConnectionError):
                pass
    finally:
        if linger_reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await close(writer)


async def tls_then(port, data, ctx=TLS_CTX):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    try:
        if data:
            writer.write(data)
            await writer.drain()
        if CLOSE_LIMIT:
            return await read_until_closed(reader, CLOSE_LIMIT)
        if data:
            try:
                await asyncio.wait_for(reader.read(4096), 2.0)
            except (asyncio.TimeoutError, ConnectionError, ssl.SSLError):
                pass
    finally:
        await close(writer)


async def tunnel(port, head, payload, ssl_ctx=None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_ctx, server_hostname="localhost" if ssl_ctx else None)
    try:
        writer.write(head + payload)
        await writer.drain()
        got = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            chunk = await asyncio.wait_for(reader.read(65536), 3.0)
            if not chunk:
                break
            got += chunk
            if payload in got:
                break
        if payload not in got:
            raise RuntimeError(f"tunnel did not echo: {got[:80]!r}")
    finally:
        await close(writer)


def probes(a):
    """name -> coroutine factory."""
    p, t, s, e = a.plain, a.tls, a.passthrough, a.echo
    return {
        "plain-malformed": lambda: send_close(p, b"CONNECT\r\n\r\n"),
        "plain-bad-target": lambda: send_close(p, b"CONNECT a/b:443 HTTP/1.1\r\nHost: a/b:443\r\n\r\n"),
        "plain-socks5": lambda: send_close(p, b"\x05\x01\x00", read=False, pause=0.05),
        "plain-half-head": lambda: send_close(p, b"CONNECT example.org:443 HTTP/1.1\r\nHost: exa", read=False, pause=0.05),
        "plain-get": lambda: send_close(p, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        "plain-denied": lambda: send_close(p, b"CONNECT 10.1.2.3:443 HTTP/1.1\r\nHost: 10.1.2.3:443\r\n\r\n"),
        "plain-too-large": lambda: send_close(p, b"CONNECT example.org:443 HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n"),
        "plain-vanish": lambda: send_close(p, b"", read=False),
        "plain-reset": lambda: send_close(p, b"CONN", read=False, linger_reset=True),
        "plain-h2-garbage": lambda: send_close(p, H2_PREFACE + GARBAGE),
        "plain-h2-half-preface": lambda: send_close(p, H2_PREFACE[:14], read=False, pause=0.05),
        "tls-h2-garbage": lambda: tls_then(t, H2_PREFACE + GARBAGE, H2_CTX),
        "tls-garbage": lambda: send_close(t, GARBAGE),
        "tls-truncated-hello": lambda: send_close(t, HELLO[: len(HELLO) // 2], read=False, pause=0.05),
        "tls-vanish": lambda: send_close(t, b"", read=False),
        "tls-socks5": lambda: send_close(t, b"\x05\x01\x00", read=False, pause=0.05),
        "tls-bad-connect": lambda: tls_then(t, b"CONNECT nonsense\r\n\r\n"),
        "tls-silent": lambda: tls_then(t, b""),
        "pt-garbage": lambda: send_close(s, GARBAGE),
        "pt-truncated-hello": lambda: send_close(s, HELLO[: len(HELLO) // 2], read=False, pause=0.05),
        "pt-malformed-hello": lambda: send_close(s, MALFORMED),
        "pt-no-route": lambda: send_close(s, HELLO),
        "pt-vanish": lambda: send_close(s, b"", read=False),
        "pt-reset": lambda: send_close(s, HELLO[:10], read=False, linger_reset=True),
        # Left waiting until the relay's own head or handshake timeout closes them (not in the default mix: slow).
        "timeout-plain-half-head": lambda: send_close(p, b"CONNECT example.org:443 HTTP/1.1\r\nHost: exa", until_closed=True),
        "timeout-tls-silent": lambda: send_close(t, b"", until_closed=True),
        "timeout-pt-truncated-hello": lambda: send_close(s, HELLO[: len(HELLO) // 2], until_closed=True),
        "ok-plain-tunnel": lambda: tunnel(p, f"CONNECT 127.0.0.1:{e} HTTP/1.1\r\nHost: 127.0.0.1:{e}\r\n\r\n".encode(), b"ping" * 8),
        "ok-tls-tunnel": lambda: tunnel(t, f"CONNECT 127.0.0.1:{e} HTTP/1.1\r\nHost: 127.0.0.1:{e}\r\n\r\n".encode(), b"ping" * 8, TLS_CTX),
        "ok-pt-tunnel": lambda: tunnel(s, b"", HELLO_OK),
    }


async def echo_server(port):
    async def serve(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
    return await asyncio.start_server(serve, "127.0.0.1", port)


async def run_round(kinds, table, n, concurrency, errors):
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        name = kinds[i % len(kinds)]
        async with sem:
            try:
                await asyncio.wait_for(table[name](), 20)
            except Exception as ex:  # a probe failing is counted, not fatal: the relay closing on us is the point
                if name.startswith("ok-"):
                    errors[name] = errors.get(name, 0) + 1
                    if errors[name] == 1:
                        print(f"  {name}: {ex!r}", file=sys.stderr)

    await asyncio.gather(*(one(i) for i in range(n)))


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    return out


def smaps(pid):
    """Resident KiB by kind of mapping: managed images (.dll), executable memory the runtime double-maps (JIT'd code,
    stubs, loader heaps), anonymous (GC heap, malloc, stacks), native libraries."""
    kinds = {"dll": 0, "doublemapped": 0, "anon": 0, "so": 0, "other": 0}
    kind = "other"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else ""
                kind = ("dll" if name.endswith(".dll") else "doublemapped" if "doublemapper" in name
                        else "so" if ".so" in name else "anon" if name in ("", "[heap]") else "other")
            elif parts[0] == "Rss:":
                kinds[kind] += int(parts[1])
    return kinds


def open_connections(admin):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith("passage_relay_connections_open"):
            return int(float(line.split()[-1]))
    return 0


def heapwalk(path, pid, round_no):
    out = f"/tmp/memprobe-heap-{pid}-{round_no}.tsv"
    subprocess.run([path, str(pid), out], check=True, capture_output=True, timeout=300)
    figures = {}
    with open(out) as f:
        for line in f:
            k, count, size = line.rstrip("\n").split("\t")
            if k in ("#total", "#committed"):
                figures[k] = int(size)
    return figures, out


# Kinds left out of --until-closed: the client leaving is their point, or they are working tunnels.
CLIENT_LEAVES = ("plain-vanish", "plain-reset", "tls-vanish", "pt-vanish", "pt-reset")


async def until_closed(a, table):
    """Per kind, how long the relay takes to close a connection after the kind's input went out."""
    global CLOSE_LIMIT
    CLOSE_LIMIT = min(max(a.close_limit, 1.0), 120.0)
    n = min(a.until_closed, 20)
    server = await echo_server(a.echo)
    kinds = a.kinds.split(",") if a.kinds else [k for k in table if not k.startswith(("timeout-", "ok-")) and k not in CLIENT_LEAVES]

    async def kind(name):
        # One connection of a kind at a time; the kinds side by side (a connection each, so the load is slight).
        seen = []
        for _ in range(n):
            try:
                seen.append(await asyncio.wait_for(table[name](), CLOSE_LIMIT + 10))
            except (OSError, asyncio.TimeoutError, ssl.SSLError) as ex:
                seen.append((float("nan"), f"failed: {ex!r}"[:60], b""))
        took = sorted(s[0] for s in seen)
        return name, took[len(took) // 2], took[-1], ",".join(sorted({s[1] for s in seen})), seen[-1][2][:60]

    print("kind\tmedian_s\tmax_s\tclosed_by\tanswer", flush=True)
    for name, median, worst, hows, answer in await asyncio.gather(*(kind(k) for k in kinds)):
        print(f"{name}\t{median:.2f}\t{worst:.2f}\t{hows}\t{answer!r}", flush=True)
    server.close()


async def main():
    ap = argparse.ArgumentParser()
    for name in ("plain", "tls", "passthrough", "echo"):
        ap.add_argument(f"--{name}", type=int, required=True)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--admin", type=int)
    ap.add_argument("--until-closed", type=int, metavar="N", help="per kind, N connections that read until the relay closes")
    ap.add_argument("--close-limit", type=float, default=30.0, help="with --until-closed: seconds to wait for the close")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--heapwalk")
    ap.add_argument("--kinds", help="comma-separated probe names (default: all)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to wait after the relay's open connections reach 0")
    a = ap.parse_args()
    a.rounds = min(a.rounds, 50)
    a.per_round = min(a.per_round, 20000)
    table = probes(a)
    if a.until_closed:
        await until_closed(a, table)
        return
    if a.pid is None or a.admin is None:
        ap.error("--pid and --admin are needed unless --until-closed")
    kinds = a.kinds.split(",") if a.kinds else [k for k in table if not k.startswith("timeout-")]
    server = await echo_server(a.echo)
    errors = {}
    print("round\tprobes\tseconds\tVmRSS_KiB\tRssAnon_KiB\tthreads\tdll_KiB\tdoublemapped_KiB\tanon_KiB\tso_KiB"
          "\tlive_heap_B\tgc_committed_B\theap_file", flush=True)

    def line(r, took, live="-", committed="-", file="-"):
        s, m = status(a.pid), smaps(a.pid)
        print(f"{r}\t{r * a.per_round}\t{took:.1f}\t{s['VmRSS']}\t{s['RssAnon']}\t{s['Threads']}\t{m['dll']}\t{m['doublemapped']}"
              f"\t{m['anon']}\t{m['so']}\t{live}\t{committed}\t{file}", flush=True)

    line(0, 0)
    for r in range(1, a.rounds + 1):
        started = time.monotonic()
        await run_round(kinds, table, a.per_round, a.concurrency, errors)
        took = time.monotonic() - started
        deadline = time.monotonic() + 30
        while open_connections(a.admin) > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(a.settle)
        if a.heapwalk:
            # RSS is read first: the dump reads the whole address space, which makes the relay's RSS jump after it.
            s = status(a.pid)
            figures, file = await asyncio.to_thread(heapwalk, a.heapwalk, a.pid, r)
            print(f"{r}\t{r * a.per_round}\t{took:.1f}\t{s['VmRSS']}\t{s['RssAnon']}\t{s['Threads']}\t-\t-\t-\t-"
                  f"\t{figures.get('#total', '-')}\t{figures.get('#committed', '-')}\t{file}", flush=True)
        else:
            line(r, took)
    if errors:
        print(f"working-tunnel failures: {errors}", file=sys.stderr)
    server.close()


asyncio.run(main())
