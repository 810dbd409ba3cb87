"""/api/domains/{name}/relay: the relay host (smarthost) a domain's mail goes through. Owners
and admins only; the rules are core's (RelayService). The password is write-only: no response
carries it, only whether one is set."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, put
from litestar.params import FromPath, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.relays import MAX_PASSWORD, MAX_USERNAME, RelayService, RelaySetting, RelayTls
from mailmark.web.api.v1.auth import Injected


class RelayOut(msgspec.Struct, rename="camel"):
    domain: str
    # "default": the installation's relay when it has one, else each recipient's MX;
    # "relay": the domain's own relay below; "direct": each recipient's MX.
    choice: str
    host: str | None
    port: int | None
    tls: str | None
    username: str | None
    password_set: bool
    # "host:port" of MAILMARK_RELAY_HOST, or null: without one, "default" means direct.
    installation_relay: str | None


class RelayIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    choice: Literal["default", "relay", "direct"]
    host: Annotated[str, msgspec.Meta(max_length=255)] = ""
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    tls: Literal["starttls", "implicit"] = "starttls"
    username: Annotated[str, msgspec.Meta(max_length=MAX_USERNAME)] = ""
    # Empty: keep the stored password when the host and username stay the same.
    password: Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD)] = ""


def relay_out(setting: RelaySetting) -> RelayOut:
    return RelayOut(
        domain=setting.domain,
        choice=setting.choice.value,
        host=setting.host,
        port=setting.port,
        tls=setting.tls.value if setting.tls else None,
        username=setting.username,
        password_set=setting.password_set,
        installation_relay=setting.installation_relay,
    )


class RelayController(Controller):
    path = "/domains/{name:str}/relay"
    tags = ("Domains",)

    @get(operation_id="appGetDomainRelay", summary="The relay host of a domain's mail")
    async def show(
        self, viewer: Injected[Viewer], relays: Injected[RelayService], name: FromPath[str]
    ) -> RelayOut:
        """The domain's choice, its relay without the password, and the installation's relay."""
        return relay_out(await relays.setting_for(viewer, name))

    @put(operation_id="appSetDomainRelay", summary="Choose the relay host of a domain's mail")
    async def choose(
        self,
        viewer: Injected[Viewer],
        relays: Injected[RelayService],
        name: FromPath[str],
        data: JSONBody[RelayIn],
    ) -> RelayOut:
        """`relay` sends the domain's mail through `host` (TLS required, its certificate
        verified, AUTH when a username is given); `direct` to each recipient's MX even when the
        installation relays; `default` follows the installation's setting."""
        if data.choice == "direct":
            setting = await relays.go_direct_for(viewer, name)
        elif data.choice == "default":
            setting = await relays.use_default_for(viewer, name)
        else:
            setting = await relays.use_relay_for(
                viewer,
                name,
                host=data.host,
                port=data.port,
                tls=RelayTls(data.tls),
                username=data.username,
                password=data.password,
            )
        return relay_out(setting)
