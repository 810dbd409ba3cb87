"""Threading at delivery: References/In-Reply-To first, then the base subject, for replies only."""

from __future__ import annotations

from mailmark.core.model import Mailbox
from tests.support.world import World


def mail(
    message_id: str,
    subject: str,
    *,
    in_reply_to: str | None = None,
    references: tuple[str, ...] = (),
) -> bytes:
    lines = [
        "From: Alice <alice@example.org>",
        "To: sales@acme.test",
        f"Subject: {subject}",
        f"Message-ID: <{message_id}@example.org>",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}@example.org>")
    if references:
        lines.append("References: " + "\r\n ".join(f"<{r}@example.org>" for r in references))
    return ("\r\n".join(lines) + "\r\n\r\nText.\r\n").encode()


async def deliver(world: World, raw: bytes, *to: Mailbox) -> list[str]:
    """Deliver and return the thread id of each placement, in recipient order."""
    receipt = await world.services.delivery.deliver(
        raw, recipients=list(to or [world.sales]), mail_from="alice@example.org"
    )
    return [p.thread_id for p in receipt.placements]


async def test_reply_by_in_reply_to_joins_the_thread(world: World) -> None:
    [first] = await deliver(world, mail("a1", "Pricing"))
    [reply] = await deliver(world, mail("a2", "Your question", in_reply_to="a1"))
    [unrelated] = await deliver(world, mail("b1", "Something else"))

    assert reply == first  # joined although the subject changed
    assert unrelated != first


async def test_reply_by_references_joins_the_thread(world: World) -> None:
    [root] = await deliver(world, mail("r1", "Pricing"))
    [middle] = await deliver(world, mail("r2", "Re: Pricing", references=("r1",)))
    # Only the root is referenced (the middle message is unknown to this client): still one thread.
    [late] = await deliver(world, mail("r3", "New subject", references=("r1", "never-seen")))
    # References naming only messages we do not have fall back to the subject for a reply.
    [orphan] = await deliver(world, mail("r4", "Re: Pricing", references=("never-seen",)))

    assert middle == root
    assert late == root
    assert orphan == root


async def test_same_subject_without_reply_marks_starts_a_new_thread(world: World) -> None:
    [first] = await deliver(world, mail("n1", "Weekly report"))
    [second] = await deliver(world, mail("n2", "Weekly report"))

    assert second != first


async def test_re_subject_without_references_joins_by_subject(world: World) -> None:
    [first] = await deliver(world, mail("s1", "[acme] Launch  plan"))
    [reply] = await deliver(world, mail("s2", "RE: Re: launch plan"))
    [forward] = await deliver(world, mail("s3", "Fwd: Launch plan"))

    assert reply == first  # base subjects match (RFC 5256 §2.1): prefixes, tag, case, spaces
    assert forward == first


async def test_threads_never_cross_mailboxes(world: World) -> None:
    [sales_thread] = await deliver(world, mail("x1", "Invoice"), world.sales)
    [by_reference] = await deliver(
        world, mail("x2", "Re: Invoice", in_reply_to="x1"), world.support
    )
    [by_subject] = await deliver(world, mail("x3", "Re: Invoice"), world.support)

    # support never saw x1: its first message starts its own thread, the second joins that one.
    assert by_reference != sales_thread
    assert by_subject == by_reference
    # And a reply delivered to both joins each mailbox's own thread.
    sales_reply, support_reply = await deliver(
        world, mail("x4", "Re: Invoice", in_reply_to="x1"), world.sales, world.support
    )
    assert (sales_reply, support_reply) == (sales_thread, by_reference)
