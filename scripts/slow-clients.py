#!/usr/bin/env python3
"""Holds N trickling SMTP clients against a gateway (issue 30's attack): each connects,
says EHLO, then sends "NOOP\\r\\n" one byte every INTERVAL seconds, for DURATION seconds.
Prints how many were refused at connect, evicted (a 421 while idle), cut otherwise, and
how many were still open at the end.

    scripts/slow-clients.py HOST:PORT [N=1000] [DURATION=60] [INTERVAL=3]
"""
import asyncio
import sys


async def client(host, port, duration, interval, stats):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except Exception:
        stats["connect_failed"] += 1
        return
    try:
        banner = await asyncio.wait_for(reader.readline(), 10)
        if not banner.startswith(b"220"):
            stats["refused"] += 1
            return
        writer.write(b"EHLO slow.test\r\n")
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if line[3:4] != b"-":
                break
        stats["held"] += 1
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        noop = b"NOOP\r\n"
        i = 0
        while loop.time() < end:
            writer.write(noop[i % len(noop):i % len(noop) + 1])
            await writer.drain()
            i += 1
            try:
                line = await asyncio.wait_for(reader.readline(), interval)
            except asyncio.TimeoutError:
                continue
            if not line:
                stats["cut"] += 1
                return
            if line.startswith(b"421"):
                stats["evicted" if b"idle" in line else "cut"] += 1
                return
        stats["open_at_end"] += 1
    except Exception:
        stats["cut"] += 1
    finally:
        writer.close()


async def main():
    host, port = sys.argv[1].rsplit(":", 1)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else 60
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 3
    stats = dict(connect_failed=0, refused=0, held=0, evicted=0, cut=0, open_at_end=0)
    tasks = []
    for _ in range(n):
        tasks.append(asyncio.create_task(client(host, int(port), duration, interval, stats)))
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    print("slow clients:", " ".join(f"{k}={v}" for k, v in stats.items()))


asyncio.run(main())
