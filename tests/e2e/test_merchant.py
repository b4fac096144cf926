"""Transaction-is-invoicing on a real network: a payment notification becomes an invoice that
arrives in the buyer's wallet over server-sent events; a retried notification gets the same one."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import aiohttp
import pytest
from aiohttp import web

from chainvoice.merchant import Merchant, build_app

pytestmark = pytest.mark.timeout(180)


async def sse_events(session: aiohttp.ClientSession, url: str, queue: asyncio.Queue) -> None:
    async with session.get(url) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        await queue.put("subscribed")
        data = []
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                await queue.put((time.perf_counter(), json.loads("".join(data))))
                data = []


def test_payment_to_wallet_push(network):
    net = network
    ids = net.identities
    client = net.client(0)
    _, r = client.sign_and_submit(net.key("tax"), "register_member", {
        "key": net.key("taxi").public_key, "role": "merchant", "name": "Pengcheng Taxi",
        "tax_id": ids["taxi"]["tax_id"], "taxpayer_type": "small", "monthly_quota": 10**12})
    assert r["receipt"]["status"] == "ok"
    wallet = net.key("bob").public_key.hex()
    merchant = Merchant(net.key("taxi"), ids["taxi"]["tax_id"], "Pengcheng Taxi", net.entries[1].api_url, client.chain_id)

    async def scenario() -> list[float]:
        runner = web.AppRunner(build_app(merchant))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - port 0 was chosen by the OS
        pay_url = f"http://127.0.0.1:{port}/payments"
        events: asyncio.Queue = asyncio.Queue()
        latencies = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            listener = asyncio.create_task(sse_events(session, f"{net.entries[2].api_url}/v1/events?holder={wallet}", events))
            try:
                assert await asyncio.wait_for(events.get(), 10) == "subscribed"
                for i in range(20):
                    payment = {"payment_id": f"ride-{i}", "buyer_wallet": wallet, "buyer_name": "Bob Li",
                               "lines": [{"name": "Taxi fare", "quantity": 1, "unit_price": 2300 + i, "rate_bp": 300}]}
                    start = time.perf_counter()
                    async with session.post(pay_url, json=payment) as resp:
                        doc = await resp.json()
                    assert resp.status == 200 and doc["state"] == "issued", doc
                    arrived, event = await asyncio.wait_for(events.get(), 15)
                    assert event["number"] == doc["number"] and event["kind"] == "issue" and event["status"] == "ok"
                    assert event["invoice"]["holder"] == wallet and event["invoice"]["total"] == doc["total"]
                    latencies.append(arrived - start)
                # the payment provider retries the first notification: the same invoice, no second one
                async with session.post(pay_url, json={"payment_id": "ride-0", "buyer_wallet": wallet,
                                                        "lines": [{"name": "Taxi fare", "quantity": 1, "unit_price": 2300, "rate_bp": 300}]}) as resp:
                    retry = await resp.json()
                assert resp.status == 200 and retry["state"] == "already_issued"
                # bad notifications are refused with a reason, nothing is signed
                for bad in ({"payment_id": "x"}, {"payment_id": "y", "buyer_wallet": "zz", "lines": []}, [1, 2]):
                    async with session.post(pay_url, json=bad) as resp:
                        err = await resp.json()
                    assert resp.status == 400 and err["error"]["code"] == "BAD_PAYMENT"
                async with session.post(pay_url, data=b"not json") as resp:
                    assert resp.status == 400
            finally:
                listener.cancel()
                await runner.cleanup()
        return latencies

    latencies = asyncio.run(asyncio.wait_for(scenario(), 120))
    wallet_doc = net.client(3).wallet(bytes.fromhex(wallet))
    fares = [i for i in wallet_doc["invoices"] if i["seller_tax_id"] == ids["taxi"]["tax_id"]]
    assert len(fares) == 20  # one invoice per payment, the retry made none
    print(f"\npayment -> wallet event: p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms over {len(latencies)} payments")
