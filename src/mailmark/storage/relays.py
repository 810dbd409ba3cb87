"""Each domain's own outbound route: its relay host (password sealed) or "direct"."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mailmark.core.relays import DomainRelay, Relay, RelayChoice, RelayTls
from mailmark.storage.sql import Repository
from mailmark.storage.tables import domain_relays, domains


def _relay_of(row: Any) -> DomainRelay:
    values = row._mapping
    choice = RelayChoice(values["choice"])
    relay = None
    if choice is RelayChoice.RELAY:
        relay = Relay(
            host=values["host"],
            port=values["port"],
            tls=RelayTls(values["tls"]),
            username=values["username"],
            password=values["password"],
        )
    return DomainRelay(values["domain_id"], choice, values["updated_at"], relay)


class SqlRelays(Repository):
    async def get(self, domain_id: int) -> DomainRelay | None:
        query = domain_relays.select().where(domain_relays.c.domain_id == domain_id)
        row = (await self._conn.execute(query)).first()
        return _relay_of(row) if row else None

    async def get_by_domain_name(self, name: str) -> DomainRelay | None:
        query = (
            sa.select(domain_relays)
            .join(domains, domains.c.id == domain_relays.c.domain_id)
            .where(domains.c.name == name)
        )
        row = (await self._conn.execute(query)).first()
        return _relay_of(row) if row else None

    async def put(self, relay: DomainRelay) -> None:
        await self.remove(relay.domain_id)
        route = relay.relay
        await self._conn.execute(
            domain_relays.insert().values(
                domain_id=relay.domain_id,
                choice=relay.choice.value,
                host=route.host if route else None,
                port=route.port if route else None,
                tls=route.tls.value if route else None,
                username=route.username if route else None,
                password=route.password if route else None,
                updated_at=relay.updated_at,
            )
        )

    async def remove(self, domain_id: int) -> None:
        await self._conn.execute(
            domain_relays.delete().where(domain_relays.c.domain_id == domain_id)
        )
