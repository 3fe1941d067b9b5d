"""Relays TCP connections from one local address to another.

scripts/local-api runs moto on 127.0.0.1 (where you read mail back), and the
Lambda containers that sam local starts sit on Docker's bridge, where the
host's loopback is out of reach: this relays the bridge gateway address
(what `host.docker.internal:host-gateway` resolves to) to moto, so moto never
listens on any other interface.

usage: python scripts/tcp_relay.py LISTEN_HOST PORT TARGET_HOST TARGET_PORT
"""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(host, port, target_host, target_port):
    async def serve(client_reader, client_writer):
        try:
            reader, writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))

    server = await asyncio.start_server(serve, host, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    h, p, th, tp = sys.argv[1:5]
    asyncio.run(main(h, int(p), th, int(tp)))
