"""The send-request rules, called directly: expansion into drafts (de-duplication, sender-group
rotation, merge tags), every refusal with the field it names, and one transaction per send."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from mailmark.core.campaigns import (
    CAMPAIGN_BATCH,
    MAX_CAMPAIGN,
    AttachmentRequest,
    CampaignExpansion,
    SendingDomain,
    SendRequest,
    SendType,
    Sent,
)
from mailmark.core.compose import Attachment
from mailmark.core.errors import HeaderInjection, InvalidInput, MailmarkError, NotFound
from mailmark.core.ports import UnitOfWork
from tests.support.world import DOMAIN, World, queued_rows


def later_ms(seconds: int = 3600) -> int:
    return int((time.time() + seconds) * 1000)


async def acme(world: World) -> SendingDomain:
    domain = await world.services.domains.get(DOMAIN)
    assert domain.id is not None
    return SendingDomain(domain.id, domain.name)


def service(world: World) -> CampaignExpansion:
    return world.services.campaigns


CAMPAIGN = SendRequest(
    subject="Hi {{firstName}}",
    from_address="sales@acme.test",
    to=("ann@example.com", "bob@example.com"),
    html="<p>Dear {{ firstName }} of {{company}}</p>",
    text="Dear {{firstName}}",
    type=SendType.CAMPAIGN,
)


async def test_a_transactional_send_is_one_message_to_every_recipient(world: World) -> None:
    request = SendRequest(
        subject="Hello",
        from_address="Sales@ACME.test",
        to=("ann@example.com",),
        cc=("bob@example.com",),
        text="Hello",
    )

    sent = await service(world).send(request, await acme(world))

    assert sent.batch_id is None
    [submission] = sent.submissions
    assert submission.recipients == ("ann@example.com", "bob@example.com")
    assert await queued_rows(world) == [
        ("sales@acme.test", "ann@example.com", None),
        ("sales@acme.test", "bob@example.com", None),
    ]


async def test_a_campaign_is_one_draft_per_unique_recipient_with_its_merge_tags(
    world: World,
) -> None:
    request = replace(
        CAMPAIGN,
        to=("ann@example.com", "Bob@Example.com", "ANN@example.com", "cy@example.com"),
        variables={
            "ann@example.com": {"firstName": "Ann", "company": "<Acme & Co>"},
            "BOB@example.com": {"firstName": "Bob"},
        },
    )

    expansion = await service(world).expand(request, await acme(world))

    assert expansion.batch_id is not None and expansion.batch_id.startswith("batch_")
    # One email per address whatever its case: in first-seen order, as last spelled.
    assert [draft.to for draft in expansion.drafts] == [
        ("ANN@example.com",),
        ("Bob@Example.com",),
        ("cy@example.com",),
    ]
    assert [draft.subject for draft in expansion.drafts] == ["Hi Ann", "Hi Bob", "Hi "]
    assert expansion.drafts[0].html == "<p>Dear Ann of &lt;Acme &amp; Co&gt;</p>"
    assert expansion.drafts[1].text == "Dear Bob"
    assert {draft.batch_id for draft in expansion.drafts} == {expansion.batch_id}


async def test_a_sender_group_takes_turns_and_gives_its_recipients(world: World) -> None:
    domain = await acme(world)
    group = await world.services.sender_groups.create(
        domain.id,
        domain.name,
        name="Outreach",
        mailboxes=["sales", "support"],
        emails=["one@example.com", "two@example.com", "three@example.com"],
    )
    request = replace(CAMPAIGN, from_address=None, to=(), sender_group_id=str(group.group.id))

    sent = await service(world).send(request, domain)

    assert len(sent.submissions) == 3
    assert await queued_rows(world) == [
        ("sales@acme.test", "one@example.com", sent.batch_id),
        ("support@acme.test", "two@example.com", sent.batch_id),
        ("sales@acme.test", "three@example.com", sent.batch_id),
    ]


async def test_a_sender_groups_whole_list_goes_in_one_request_queued_batch_by_batch(
    world: World,
) -> None:
    domain = await acme(world)
    emails = [f"r{n}@example.com" for n in range(CAMPAIGN_BATCH + 1)]
    group = await world.services.sender_groups.create(
        domain.id, domain.name, name="Everyone", mailboxes=["sales", "support"], emails=emails
    )
    request = replace(CAMPAIGN, from_address=None, to=(), sender_group_id=str(group.group.id))
    seen: list[int] = []

    async def count(uow: UnitOfWork, sent: Sent) -> None:
        seen.append(len(sent.submissions))

    sent = await service(world).send(request, domain, before_commit=count)

    assert len(sent.submissions) == len(emails) and sent.skipped == []
    rows = await queued_rows(world)
    assert [row[1] for row in rows] == emails
    assert {row[2] for row in rows} == {sent.batch_id}
    # The last batch's transaction sees the whole send (an idempotency record is written there).
    assert seen == [len(emails)]


def attachment(
    filename: str,
    content: str = "aGk=",
    content_type: str | None = None,
    content_id: str | None = None,
) -> AttachmentRequest:
    return AttachmentRequest(filename, content, content_type, content_id)


REFUSALS = [
    (replace(CAMPAIGN, to=("not an address",)), InvalidInput, "to", "is not a valid email"),
    (replace(CAMPAIGN, subject="Hi\r\nBcc: x@example.com"), InvalidInput, "subject", "line breaks"),
    (replace(CAMPAIGN, reply_to="nope"), InvalidInput, "replyTo", "Reply-To address"),
    (replace(CAMPAIGN, headers={"X-A": "b\nc"}), InvalidInput, "headers", "X-A header"),
    (replace(CAMPAIGN, html=None, text=None), InvalidInput, "html", "Give html or text"),
    (
        replace(CAMPAIGN, type=SendType.TRANSACTIONAL, variables={}),
        InvalidInput,
        "variables",
        "variables are for campaign sends.",
    ),
    (
        replace(CAMPAIGN, variables={"ann@example.com": {f"v{n}": "x" for n in range(101)}}),
        InvalidInput,
        "variables",
        "At most 100 variables",
    ),
    (replace(CAMPAIGN, scheduled_at_ms=-1), InvalidInput, "scheduledAt", "milliseconds"),
    (replace(CAMPAIGN, scheduled_at_ms=1750000000000), InvalidInput, "scheduledAt", "future"),
    (
        replace(CAMPAIGN, scheduled_at_ms=later_ms(400 * 86400)),
        InvalidInput,
        "scheduledAt",
        "at most a year ahead",
    ),
    (
        replace(CAMPAIGN, type=SendType.TRANSACTIONAL, sender_group_id="1"),
        InvalidInput,
        "senderGroupId",
        "senderGroupId is for campaign sends.",
    ),
    (replace(CAMPAIGN, cc=()), InvalidInput, "cc", "no cc or bcc"),
    (replace(CAMPAIGN, bcc=("x@example.com",)), InvalidInput, "cc", "no cc or bcc"),
    (replace(CAMPAIGN, from_address=None), InvalidInput, "from", "full address"),
    (replace(CAMPAIGN, from_address="sales@other.test"), NotFound, "from", "No mailbox"),
    (replace(CAMPAIGN, from_address="nobody@acme.test"), NotFound, "from", "No mailbox"),
    (replace(CAMPAIGN, sender_group_id="999"), NotFound, "senderGroupId", "No sender group"),
    (replace(CAMPAIGN, to=()), InvalidInput, "to", "at least one recipient"),
    (
        replace(CAMPAIGN, type=SendType.TRANSACTIONAL, track_clicks=True),
        InvalidInput,
        "trackClicks",
        "trackClicks is for campaign sends",
    ),
    (
        replace(CAMPAIGN, to=tuple(f"r{n}@example.com" for n in range(MAX_CAMPAIGN + 1))),
        InvalidInput,
        "to",
        f"At most {MAX_CAMPAIGN} recipients",
    ),
    (
        replace(
            CAMPAIGN, attachments=(AttachmentRequest("a.txt", "aGk="), attachment("b.txt", "!!"))
        ),
        InvalidInput,
        "attachments[1].content",
        "not valid base64",
    ),
    (
        replace(CAMPAIGN, attachments=(attachment("a\r\nBcc: x@example.com.txt"),)),
        HeaderInjection,
        "attachments[0].filename",
        "line breaks",
    ),
    (
        replace(CAMPAIGN, attachments=(attachment("a\tb.txt"),)),
        InvalidInput,
        "attachments[0].filename",
        "printable",
    ),
    (
        replace(CAMPAIGN, attachments=(attachment("a.txt", content_type="text/plain; x=1"),)),
        InvalidInput,
        "attachments[0].contentType",
        "type/subtype",
    ),
    (
        replace(CAMPAIGN, attachments=(attachment("a.png", content_id="<logo>"),)),
        InvalidInput,
        "attachments[0].contentId",
        "content id",
    ),
    (
        replace(
            CAMPAIGN,
            attachments=(
                attachment("a.png", content_id="logo"),
                attachment("b.png", content_id="LOGO"),
            ),
        ),
        InvalidInput,
        "attachments[1].contentId",
        "given twice",
    ),
    (
        replace(CAMPAIGN, attachments=tuple(attachment(f"{n}.txt") for n in range(21))),
        InvalidInput,
        "attachments",
        "At most 20 attachments",
    ),
    (replace(CAMPAIGN, tags=tuple(f"t{n}" for n in range(11))), InvalidInput, "tags", "10 tags"),
    (replace(CAMPAIGN, tags=("no spaces",)), InvalidInput, "tags", "A tag is"),
    (replace(CAMPAIGN, tags=("x" * 65,)), InvalidInput, "tags", "A tag is"),
]


@pytest.mark.parametrize(("request_", "error", "field", "message"), REFUSALS)
async def test_every_refusal_names_its_field_and_queues_nothing(
    world: World, request_: SendRequest, error: type[MailmarkError], field: str, message: str
) -> None:
    with pytest.raises(error) as refused:
        await service(world).send(request_, await acme(world))

    assert refused.value.field == field
    assert message in refused.value.message
    assert await queued_rows(world) == []


async def test_reply_to_headers_attachments_and_tags_go_with_every_campaign_email(
    world: World,
) -> None:
    request = replace(
        CAMPAIGN,
        reply_to="help@acme.test",
        headers={"X-Campaign": "spring"},
        attachments=(
            AttachmentRequest("logo.png", "iVBORw0=\n", content_id="logo"),
            AttachmentRequest("terms", "aGk=", "text/plain"),
            AttachmentRequest("data.unknownext", ""),
        ),
        tags=("spring", "promo", "spring"),
    )

    expansion = await service(world).expand(request, await acme(world))

    assert len(expansion.drafts) == 2
    for draft in expansion.drafts:
        assert draft.reply_to == "help@acme.test"
        assert draft.headers == {"X-Campaign": "spring"}
        assert draft.tags == ("spring", "promo")
        assert draft.attachments == (
            Attachment("logo.png", b"\x89PNG\r", "image/png", "logo"),
            Attachment("terms", b"hi", "text/plain"),
            Attachment("data.unknownext", b"", "application/octet-stream"),
        )


async def test_a_sender_group_without_mailboxes_is_refused(world: World) -> None:
    domain = await acme(world)
    group = await world.services.sender_groups.create(
        domain.id, domain.name, name="Empty", mailboxes=[], emails=["one@example.com"]
    )
    request = replace(CAMPAIGN, from_address=None, to=(), sender_group_id=str(group.group.id))

    with pytest.raises(InvalidInput, match="has no mailboxes") as refused:
        await service(world).send(request, domain)
    assert refused.value.field == "senderGroupId"


async def test_before_commit_sees_the_batch_in_the_same_transaction(world: World) -> None:
    seen: list[Sent] = []

    async def refuse(uow: UnitOfWork, sent: Sent) -> None:
        seen.append(sent)
        raise InvalidInput("refused before commit")

    with pytest.raises(InvalidInput, match="refused before commit"):
        await service(world).send(CAMPAIGN, await acme(world), before_commit=refuse)

    [sent] = seen
    assert sent.batch_id is not None and len(sent.submissions) == 2
    assert await queued_rows(world) == []  # the send rolled back with its hook
