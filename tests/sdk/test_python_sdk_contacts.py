"""The Python SDK's contacts and lists methods, sync and async, against the live listeners."""

from __future__ import annotations

import asyncio

import pytest
from mailmark_sdk import AsyncMailmark, ConflictError, Mailmark, NotFoundError, ValidationError

from tests.sdk.conftest import LiveApi


def _sync_contacts(api: LiveApi) -> None:
    with Mailmark(api.api_key, base_url=api.base_url) as client:
        ann = client.create_contact(
            "ann@example.com", first_name="Ann", fields={"plan": "pro"}, tags=["vip"]
        )
        assert (ann.email, ann.first_name, ann.fields, ann.tags) == (
            "ann@example.com",
            "Ann",
            {"plan": "pro"},
            ["vip"],
        )
        assert ann.status == "subscribed" and ann.suppressed is False
        with pytest.raises(ConflictError):
            client.create_contact("ANN@example.com")
        with pytest.raises(ValidationError) as invalid:
            client.create_contact("not an address")
        assert invalid.value.field == "email"

        changed = client.update_contact(ann.id, last_name="Lee", status="unsubscribed")
        assert (changed.last_name, changed.status) == ("Lee", "unsubscribed")
        assert client.get_contact(ann.id) == changed
        assert client.list_contacts(field=("plan", "pro")).data == [changed]
        assert client.list_contacts(tag="nope").data == []
        assert client.delete_contact(ann.id) is True
        with pytest.raises(NotFoundError):
            client.get_contact(ann.id)


async def test_sync_client_manages_contacts(live_api: LiveApi) -> None:
    await asyncio.to_thread(_sync_contacts, live_api)


async def test_async_client_imports_exports_and_manages_lists(live_api: LiveApi) -> None:
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        customers = await client.create_list("Customers")
        assert (customers.name, customers.filter, customers.size) == ("Customers", None, 0)
        job = await client.import_contacts(
            "Mail,Name,Plan\nbo@example.com,Bo,pro\ncy@example.com,Cy,free\nbroken,X,y\n",
            mapping={"Mail": "email", "Name": "first_name"},
            on_duplicate="skip",
            list_id=customers.id,
        )
        for _ in range(500):
            job = await client.get_contact_import(job.id)
            if job.status != "running":
                break
            await asyncio.sleep(0.02)
        assert (job.status, job.created, job.failed) == ("done", 2, 1)
        assert [e.row for e in job.errors] == [4]

        members = await client.list_contacts(list_id=customers.id)
        assert [c.email for c in members.data] == ["bo@example.com", "cy@example.com"]
        assert members.data[0].fields == {"plan": "pro"}
        exported = await client.export_contacts(field=("plan", "free"))
        assert exported.splitlines()[1].startswith("cy@example.com,Cy,")

        segment = await client.create_list(
            "Pro", filter={"field": {"name": "plan", "value": "pro"}}
        )
        assert segment.size == 1
        others = await client.create_list("Others")
        grown = await client.add_list_members(others.id, emails=["cy@example.com"])
        assert grown.size == 1
        assert await client.remove_list_member(others.id, members.data[1].id) is True
        renamed = await client.update_list(others.id, name="Later")
        assert renamed.name == "Later"
        assert {x.name for x in await client.list_lists()} == {"Customers", "Pro", "Later"}
        assert (await client.get_list(segment.id)).filter == {
            "field": {"name": "plan", "value": "pro"}
        }
        assert await client.delete_list(others.id) is True
        with pytest.raises(NotFoundError):
            await client.get_list(others.id)
