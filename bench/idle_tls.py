#!/usr/bin/env python3
"""Memory per idle implicit-TLS connection before login, as `load idle --pid` reports it for
plain connections (the load generator speaks no TLS).

    bench/idle_tls.py --port 1993 --pid PID [--protocol imap|pop3] [--connections 2000] [--label L]

Opens N TLS connections to 127.0.0.1:PORT (the certificate is not checked: the example server
makes a self-signed one at start), reads each greeting, then reads the growth of the server's
memory (its process and its children, proportional and resident set, from
/proc/PID/smaps_rollup) and prints it per connection, then one line of JSON.
"""

import argparse
import asyncio
import json
import os
import ssl


def tree(pid):
    """PIDs of the process and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            pass
    return pids


def memory(pid):
    """(resident KiB, proportional KiB) of the process tree."""
    rss = pss = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key == "Rss":
                        rss += int(rest.split()[0])
                    elif key == "Pss":
                        pss += int(rest.split()[0])
        except FileNotFoundError:
            pass
    return rss, pss


async def connect(port, context, protocol, gate):
    async with gate:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context), 60
        )
        greeting = await asyncio.wait_for(reader.readline(), 60)
        expected = b"* OK" if protocol == "imap" else b"+OK"
        if not greeting.startswith(expected):
            raise RuntimeError(f"greeting: {greeting!r}")
        return writer


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--protocol", choices=["imap", "pop3"], default="imap")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    # The example server lets 16 handshakes per address run at once (limits.max_setup_per_address).
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--label", default="", help="carried into the JSON line, for scripts")
    args = parser.parse_args()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    gate = asyncio.Semaphore(args.concurrency)

    async def open_many(n):
        return await asyncio.gather(
            *(connect(args.port, context, args.protocol, gate) for _ in range(n))
        )

    for writer in await open_many(args.warmup):
        writer.close()
    await asyncio.sleep(1)
    rss0, pss0 = memory(args.pid)
    writers = await open_many(args.connections)
    await asyncio.sleep(1)
    rss1, pss1 = memory(args.pid)
    n = len(writers)
    rss, pss = (rss1 - rss0) / n, (pss1 - pss0) / n
    print(
        f"{n} idle TLS connections ({args.protocol}, before login): resident {rss0} -> {rss1} "
        f"KiB ({rss:.2f} KiB per connection); proportional {pss0} -> {pss1} KiB "
        f"({pss:.2f} KiB per connection)"
    )
    print(json.dumps({"load": {"mode": "idle-tls", "label": args.label,
                               "protocol": args.protocol,
                               "connections": n, "rss_kib_per_conn": round(rss, 3),
                               "pss_kib_per_conn": round(pss, 3)}}))
    for writer in writers:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
