"""IRC networks over REST: add, list, edit, remove, connect, disconnect, run a command.

A network is its owner's alone: another user's network is ``not_found``.
Secrets (server password, SASL password) are write-only: answers say
``password_set`` / ``sasl_password_set``, never the value. Errors of their
own: ``irc_disabled``, ``irc_server_not_allowed`` (not in
``irc_allowed_servers``, or a loopback/private/link-local … address unless
``irc_allow_private_addresses``), ``irc_too_many_networks`` (403), ``irc_not_connected`` (409), ``irc_send_queue_full`` (503),
``irc_unknown_command`` (400).

A network may have a client certificate for SASL EXTERNAL / CertFP, made by
Hubbub (``POST /networks/{id}/certificate``, or on its own when
``sasl_mechanism`` is ``EXTERNAL``): its fingerprints are in every answer, its
private key stays sealed in the network's secrets and is never shown.

``GET /conversations/{id}/irc-members`` reads an IRC channel's member list
(nicks with their prefixes), the same data as the ``irc_members`` events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field

from ...core.errors import NotFound, NotMember
from ...core.model import ConversationKind, Network, NetworkKind
from ...irc import certs
from ...irc.service import IrcDisabled, IrcService, TooManyNetworks
from ..deps import Services
from .common import INT32_MAX, PrincipalDep, ServicesDep
from .schemas import Request

router = APIRouter(tags=["networks"])

NetworkId = Annotated[int, Path(ge=1, le=INT32_MAX, description="a network id")]
Host = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.\-:\[\]]+$")]
Nick = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[^\s,*?!@#:\x00-\x1f][^\s,*?!@:\x00-\x1f]*$")
]
OptNick = Annotated[str, Field(max_length=64, pattern=r"^[^\s,*?!@:\x00-\x1f]*$")]
Line = Annotated[str, Field(max_length=400, pattern=r"^[^\r\n\x00]*$")]
Channel = Annotated[str, Field(min_length=2, max_length=200, pattern=r"^[#&+!][^\s,\x00-\x1f]+$")]
Secret = Annotated[str, Field(max_length=400, pattern=r"^[^\r\n\x00]*$")]
Word = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]
Mechanism = Literal["", "PLAIN", "EXTERNAL"]
SECRET_INPUTS = {"password": "password", "sasl_password": "sasl_password"}
PLAIN_FIELDS = (
    "host",
    "port",
    "tls",
    "accept_self_signed",
    "tls_fingerprint",
    "nick",
    "alt_nick",
    "username",
    "realname",
    "sasl_mechanism",
    "sasl_username",
    "autojoin",
    "connect_commands",
    "highlight",
    "auto_away",
    "away_message",
)


class NetworkIn(Request):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
    host: Host | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    tls: bool = True
    accept_self_signed: bool = False
    tls_fingerprint: Annotated[str, Field(max_length=95, pattern=r"^[0-9A-Fa-f:]*$")] = ""
    nick: Nick
    alt_nick: OptNick = ""
    username: OptNick = ""
    realname: Line = ""
    password: Secret = ""
    sasl_mechanism: Mechanism = ""
    sasl_username: OptNick = ""
    sasl_password: Secret = ""
    autojoin: Annotated[list[Channel], Field(max_length=100)] = []
    connect_commands: Annotated[list[Line], Field(max_length=20)] = []
    highlight: Annotated[list[Word], Field(max_length=50)] = []
    auto_away: bool = Field(default=True, description="AWAY while no browser is attached")
    away_message: Line = Field(default="", description='its text; "" for the default')
    connect: bool = Field(default=True, description="connect now (and after every restart)")


class NetworkPatch(Request):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")] | None = (
        None
    )
    host: Host | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    tls: bool | None = None
    accept_self_signed: bool | None = None
    tls_fingerprint: Annotated[str, Field(max_length=95, pattern=r"^[0-9A-Fa-f:]*$")] | None = None
    nick: Nick | None = None
    alt_nick: OptNick | None = None
    username: OptNick | None = None
    realname: Line | None = None
    password: Secret | None = Field(default=None, description='"" removes it')
    sasl_mechanism: Mechanism | None = None
    sasl_username: OptNick | None = None
    sasl_password: Secret | None = Field(default=None, description='"" removes it')
    autojoin: Annotated[list[Channel], Field(max_length=100)] | None = None
    connect_commands: Annotated[list[Line], Field(max_length=20)] | None = None
    highlight: Annotated[list[Word], Field(max_length=50)] | None = None
    auto_away: bool | None = None
    away_message: Line | None = None


class CommandIn(Request):
    command: Annotated[str, Field(min_length=2, max_length=4000)] = Field(
        description="the composer's text, e.g. /join #hubbub"
    )
    conversation: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = Field(
        default=None, description="where it was typed (the default target of /part, /me, /topic …)"
    )


class NetworkOut(BaseModel):
    id: int
    name: str
    host: str
    port: int
    tls: bool
    accept_self_signed: bool
    tls_fingerprint: str
    nick: str
    alt_nick: str
    username: str
    realname: str
    sasl_mechanism: str
    sasl_username: str
    autojoin: list[str]
    connect_commands: list[str]
    highlight: list[str]
    auto_away: bool = Field(description="AWAY while no browser is attached (after presence_grace)")
    away_message: str
    channels: list[str] = Field(description="channels joined now (rejoined after a restart)")
    enabled: bool
    password_set: bool
    sasl_password_set: bool
    state: str = Field(
        description="disconnected, connecting, registering, connected, waiting, failed, stopped"
    )
    current_nick: str | None
    error: str | None
    cert_fingerprint: str | None = Field(
        default=None,
        description="SHA-256 (hex) of the network's client certificate, to register with "
        "the network's services: /msg NickServ CERT ADD <fingerprint>; null without one",
    )
    cert_fingerprint_sha512: str | None = Field(
        default=None,
        description="SHA-512 (hex) of the same certificate (Libera.Chat shows this one)",
    )

    @classmethod
    def of(cls, network: Network, irc: IrcService) -> NetworkOut:
        cfg = network.config
        secrets = irc.box.open(str(cfg.get("secrets", "")), network.id)
        state = irc.state(network.id)
        cert = _cert_info(network)
        return cls(
            id=network.id,
            name=network.name,
            host=str(cfg.get("host", "")),
            port=int(cfg.get("port", 6697)),
            tls=bool(cfg.get("tls", True)),
            accept_self_signed=bool(cfg.get("accept_self_signed", False)),
            tls_fingerprint=str(cfg.get("tls_fingerprint", "")),
            nick=str(cfg.get("nick", "")),
            alt_nick=str(cfg.get("alt_nick", "")),
            username=str(cfg.get("username", "")),
            realname=str(cfg.get("realname", "")),
            sasl_mechanism=str(cfg.get("sasl_mechanism", "")),
            sasl_username=str(cfg.get("sasl_username", "")),
            autojoin=list(cfg.get("autojoin", [])),
            connect_commands=list(cfg.get("connect_commands", [])),
            highlight=list(cfg.get("highlight", [])),
            auto_away=bool(cfg.get("auto_away", True)),
            away_message=str(cfg.get("away_message", "")),
            channels=list(cfg.get("channels", [])),
            enabled=bool(cfg.get("enabled", False)),
            password_set=bool(secrets.get("password")),
            sasl_password_set=bool(secrets.get("sasl_password")),
            state=state["state"],
            current_nick=state["nick"],
            error=state["error"],
            cert_fingerprint=cert.sha256 if cert else None,
            cert_fingerprint_sha512=cert.sha512 if cert else None,
        )


class CertificateOut(BaseModel):
    fingerprint: str = Field(description="SHA-256 of the DER certificate, lower-case hex")
    fingerprint_sha512: str = Field(description="SHA-512 of the DER certificate, lower-case hex")
    not_after: int = Field(description="when it expires, milliseconds since the Unix epoch")
    certificate: str = Field(description="the certificate, PEM (public; the key is never shown)")
    hint: str = Field(description="how to register it with the network's services")

    @classmethod
    def of(cls, info: certs.CertInfo) -> CertificateOut:
        return cls(
            fingerprint=info.sha256,
            fingerprint_sha512=info.sha512,
            not_after=info.not_after,
            certificate=info.pem,
            hint=f"/msg NickServ CERT ADD {info.sha256}",
        )


class IrcMemberOut(BaseModel):
    nick: str
    prefixes: str = Field(description='channel status prefixes, highest first ("@", "+", "@+", "")')


class IrcMembersOut(BaseModel):
    conversation: int
    network: int
    channel: str
    state: str = Field(
        description="the network's connection state; the list is empty when not known"
    )
    members: list[IrcMemberOut] = Field(description="sorted by nick, case-insensitively")


def _cert_info(network: Network) -> certs.CertInfo | None:
    pem = network.config.get(certs.CONFIG_KEY)
    if not pem:
        return None
    try:
        return certs.info(str(pem))
    except ValueError:
        return None


def _irc(services: Services) -> IrcService:
    if services.irc is None or not services.irc.policy.enabled:
        raise IrcDisabled("IRC is switched off on this server")
    return services.irc


async def _own(services: Services, user_id: int, network_id: int) -> Network:
    network = await services.store.get_network(network_id)
    if network is None or network.user_id != user_id or network.kind is not NetworkKind.IRC:
        raise NotFound("no such network")
    return network


def _new_cert(name: str, config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A fresh client certificate: the config with it, and the key to seal."""
    pair = certs.client_cert(name)
    return {**config, certs.CONFIG_KEY: pair.cert_pem.decode()}, pair.key_pem.decode()


def _seal(
    irc: IrcService, network: Network, config: dict[str, Any], changes: dict[str, str | None]
) -> dict[str, Any]:
    secrets = irc.box.open(str(network.config.get("secrets", "")), network.id)
    for key, value in changes.items():
        if value is None:
            continue
        if value:
            secrets[key] = value
        else:
            secrets.pop(key, None)
    config = {k: v for k, v in config.items() if k != "secrets"}
    if secrets:
        config["secrets"] = irc.box.seal(secrets, network.id)
    return config


@router.get("/networks")
async def list_networks(principal: PrincipalDep, services: ServicesDep) -> list[NetworkOut]:
    """Your IRC networks with their connection state."""
    irc = _irc(services)
    networks = await services.store.list_networks(principal.user.id, kind=NetworkKind.IRC)
    return [NetworkOut.of(n, irc) for n in networks]


@router.post("/networks", status_code=status.HTTP_201_CREATED)
async def create_network(
    body: NetworkIn, principal: PrincipalDep, services: ServicesDep
) -> NetworkOut:
    """Add an IRC network; with ``connect`` (the default) Hubbub connects at once and keeps it connected."""
    irc = _irc(services)
    host, port = body.host, body.port
    if host is None:
        default = irc.policy.default_server()
        if default is None:
            raise NotFound("give a host: this server has no default network")
        host, default_port = default
        port = port or default_port
    port = port or (6697 if body.tls else 6667)
    irc.policy.check_server(host, port)
    await irc.policy.check_address(host, port)
    existing = await services.store.list_networks(principal.user.id, kind=NetworkKind.IRC)
    if len(existing) >= irc.policy.max_networks:
        raise TooManyNetworks(f"you may have at most {irc.policy.max_networks} IRC networks")
    config: dict[str, Any] = {
        **body.model_dump(include=set(PLAIN_FIELDS)),
        "host": host,
        "port": port,
        "channels": [],
        "enabled": False,
    }
    network = await services.store.create_network(
        principal.user.id, kind=NetworkKind.IRC, name=body.name, config=config
    )
    changes: dict[str, str | None] = {
        "password": body.password,
        "sasl_password": body.sasl_password,
    }
    if body.sasl_mechanism == "EXTERNAL":
        config, changes[certs.SECRET_KEY] = _new_cert(network.name, config)
    sealed = _seal(irc, network, config, changes)
    if sealed != config:
        network = await services.store.update_network(network.id, config=sealed)
    if body.connect:
        await irc.connect(network.id)
        network = await _own(services, principal.user.id, network.id)
    return NetworkOut.of(network, irc)


@router.get("/networks/{network_id}")
async def get_network(
    network_id: NetworkId, principal: PrincipalDep, services: ServicesDep
) -> NetworkOut:
    irc = _irc(services)
    return NetworkOut.of(await _own(services, principal.user.id, network_id), irc)


@router.patch("/networks/{network_id}")
async def update_network(
    network_id: NetworkId, body: NetworkPatch, principal: PrincipalDep, services: ServicesDep
) -> NetworkOut:
    """Change some fields; a connected network reconnects with them."""
    irc = _irc(services)
    network = await _own(services, principal.user.id, network_id)
    changes = body.model_dump(include=set(PLAIN_FIELDS), exclude_none=True)
    config = {**network.config, **changes}
    irc.policy.check_server(str(config["host"]), int(config["port"]))
    await irc.policy.check_address(str(config["host"]), int(config["port"]))
    secrets: dict[str, str | None] = {
        "password": body.password,
        "sasl_password": body.sasl_password,
    }
    if config.get("sasl_mechanism") == "EXTERNAL" and not config.get(certs.CONFIG_KEY):
        config, secrets[certs.SECRET_KEY] = _new_cert(body.name or network.name, config)
    config = _seal(irc, network, config, secrets)
    network = await services.store.update_network(network.id, name=body.name, config=config)
    await irc.reload(network.id)
    return NetworkOut.of(network, irc)


@router.delete("/networks/{network_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_network(
    network_id: NetworkId, principal: PrincipalDep, services: ServicesDep
) -> None:
    """Disconnect and remove a network, with its conversations and their history."""
    irc = _irc(services)
    network = await _own(services, principal.user.id, network_id)
    conversations = await services.store.network_conversations(network.id)
    await irc.forget(network.id)
    await services.store.delete_network(network.id)
    for conversation in conversations:
        await services.hub.unsubscribe(principal.user.id, conversation.id)


@router.post("/networks/{network_id}/connect")
async def connect(
    network_id: NetworkId, principal: PrincipalDep, services: ServicesDep
) -> NetworkOut:
    """Connect now and after every restart."""
    irc = _irc(services)
    await _own(services, principal.user.id, network_id)
    await irc.connect(network_id)
    return NetworkOut.of(await _own(services, principal.user.id, network_id), irc)


@router.post("/networks/{network_id}/disconnect")
async def disconnect(
    network_id: NetworkId, principal: PrincipalDep, services: ServicesDep
) -> NetworkOut:
    """QUIT and stay disconnected, across restarts too."""
    irc = _irc(services)
    await _own(services, principal.user.id, network_id)
    await irc.disconnect(network_id)
    return NetworkOut.of(await _own(services, principal.user.id, network_id), irc)


@router.post("/networks/{network_id}/command")
async def command(
    network_id: NetworkId, body: CommandIn, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    """Run a composer command: ``/join /part /msg /query /me /notice /nick /topic /whois
    /mode /kick /invite /away /names /list /quote /close /connect /disconnect``.
    Replies from the server arrive in the network's server buffer."""
    irc = _irc(services)
    await _own(services, principal.user.id, network_id)
    return await irc.command(network_id, body.command, body.conversation)


@router.get("/networks/{network_id}/certificate")
async def get_certificate(
    network_id: NetworkId, principal: PrincipalDep, services: ServicesDep
) -> CertificateOut:
    """The network's client certificate (public part) and its fingerprints;
    ``not_found`` when it has none."""
    _irc(services)
    info = _cert_info(await _own(services, principal.user.id, network_id))
    if info is None:
        raise NotFound("this network has no client certificate")
    return CertificateOut.of(info)


@router.post("/networks/{network_id}/certificate")
async def new_certificate(
    network_id: NetworkId, principal: PrincipalDep, services: ServicesDep
) -> CertificateOut:
    """Make a new client certificate for SASL EXTERNAL / CertFP, replacing any
    other; a connected network reconnects to present it. Register its
    fingerprint with the network's services (``/msg NickServ CERT ADD <fp>``)."""
    irc = _irc(services)
    network = await _own(services, principal.user.id, network_id)
    config, key = _new_cert(network.name, dict(network.config))
    config = _seal(irc, network, config, {certs.SECRET_KEY: key})
    network = await services.store.update_network(network.id, config=config)
    await irc.reload(network.id)
    info = _cert_info(network)
    assert info is not None
    return CertificateOut.of(info)


@router.delete("/networks/{network_id}/certificate", status_code=status.HTTP_204_NO_CONTENT)
async def delete_certificate(
    network_id: NetworkId, principal: PrincipalDep, services: ServicesDep
) -> None:
    """Forget the client certificate and its key (SASL EXTERNAL stops working)."""
    irc = _irc(services)
    network = await _own(services, principal.user.id, network_id)
    config = {k: v for k, v in network.config.items() if k != certs.CONFIG_KEY}
    config = _seal(irc, network, config, {certs.SECRET_KEY: ""})
    await services.store.update_network(network.id, config=config)
    await irc.reload(network.id)


@router.get("/conversations/{conversation_id}/irc-members")
async def irc_members(
    conversation_id: Annotated[int, Path(ge=1, le=INT32_MAX, description="a conversation id")],
    principal: PrincipalDep,
    services: ServicesDep,
) -> IrcMembersOut:
    """Who is in an IRC channel now, with their prefixes (``@``, ``+`` …), as the
    network last told Hubbub (the ``irc_members`` WebSocket events carry the
    same). ``not_found`` for a conversation you cannot see or that is not an
    IRC channel; ``not_member`` for one you are not in."""
    irc = _irc(services)
    view = await services.hub.conversation(principal.user, conversation_id)
    conversation = view.conversation
    if conversation.kind is not ConversationKind.CHANNEL:
        raise NotFound("not an IRC channel")
    if view.role is None:
        raise NotMember("you are not a member of this conversation")
    network = await _own(services, principal.user.id, conversation.network_id)
    return IrcMembersOut(
        conversation=conversation.id,
        network=network.id,
        channel=conversation.name,
        state=irc.state(network.id)["state"],
        members=[
            IrcMemberOut(nick=m["nick"], prefixes=m["prefixes"])
            for m in irc.members(conversation.id)
        ],
    )
