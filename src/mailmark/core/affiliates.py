"""The affiliate program (PRODUCT.md "Affiliate Program"): applications reviewed by the
operator, a referral link per affiliate, attribution of sign-ups, 30% of every payment a referred
customer makes for the life of their account, and monthly statements paid on the 15th.

Money is integer cents. The ledger is append-only: a commission, a clawback (a refund takes back
its share of the commission) and a payout are each one row written once, keyed so that the same
order, refund or payout recorded twice is a no-op; nothing is updated or deleted, a correction is
a new row. Balances and statements are sums of rows.

A statement closes one calendar month (UTC) on the 15th of the next: its opening balance is
every row of earlier months (so a late-arriving commission or a refund after a payout is carried,
never lost), plus what the month earned; a balance of $50 or more is paid out in full (a payout
row), a smaller one rolls over to the next statement.

The operator (AccountService.is_operator) reviews applications and pays the statements.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from mailmark.core.access import Viewer, require_manager
from mailmark.core.accounts import AccountService, check_email
from mailmark.core.contact_csv import csv_line
from mailmark.core.errors import Conflict, InvalidInput, NotFound
from mailmark.core.ports import Clock, UnitOfWork, UnitOfWorkFactory

COMMISSION_PERCENT = 30
ATTRIBUTION_WINDOW = timedelta(days=90)
MINIMUM_PAYOUT_CENTS = 5000
PAYOUT_DAY = 15
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes: codes get typed from print
CODE_LENGTH = 8
MAX_WEBSITE = 300
MAX_PITCH = 2000
MAX_BANK_DETAILS = 1000
MONTH = re.compile(r"\A(\d{4})-(0[1-9]|1[0-2])\Z")


class AffiliateStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class LedgerKind(StrEnum):
    COMMISSION = "commission"
    CLAWBACK = "clawback"
    PAYOUT = "payout"


class PayoutMethod(StrEnum):
    PAYPAL = "paypal"
    BANK = "bank"


@dataclass(frozen=True)
class Affiliate:
    account_id: int
    code: str
    status: AffiliateStatus
    website: str
    pitch: str
    applied_at: datetime
    reviewed_at: datetime | None = None
    payout_method: PayoutMethod | None = None
    paypal_email: str | None = None
    bank_details: str | None = None  # IBAN/SWIFT and holder, as the affiliate wrote them
    id: int | None = None


@dataclass(frozen=True)
class LedgerEntry:
    affiliate_id: int
    entry_key: str  # unique: "commission:<order>", "clawback:<order>:<refunded>", "payout:<month>"
    kind: LedgerKind
    amount_cents: int
    month: str
    occurred_at: datetime
    recorded_at: datetime
    order_id: str | None = None
    referred_account_id: int | None = None


@dataclass(frozen=True)
class Statement:
    affiliate_id: int
    month: str
    opening_cents: int  # carried from earlier months (rollovers, late rows, clawbacks after payout)
    earned_cents: int  # the month's commissions less its clawbacks
    payout_cents: int  # 0: below the minimum, rolled over
    payable_on: date
    created_at: datetime

    @property
    def balance_cents(self) -> int:
        return self.opening_cents + self.earned_cents


@dataclass(frozen=True)
class PaidOrder:
    """What the payment provider reports about one order: paid, and how much of it refunded."""

    order_id: str
    account_ref: str | None  # the paying account's id as text
    amount_cents: int  # what the customer paid before tax, the commission's base
    refunded_cents: int
    occurred_at: datetime


@dataclass(frozen=True)
class Totals:
    clicks: int
    signups: int
    paying_customers: int
    earned_cents: int  # commissions less clawbacks, all time
    paid_cents: int  # paid out


@dataclass(frozen=True)
class Dashboard:
    affiliate: Affiliate
    link: str
    totals: Totals
    statements: list[Statement]

    @property
    def pending_cents(self) -> int:
        """Earned and not yet paid out (this month's, and balances rolled over)."""
        return self.totals.earned_cents - self.totals.paid_cents


@dataclass(frozen=True)
class Application:
    affiliate: Affiliate
    account_name: str
    email: str


@dataclass(frozen=True)
class Payout:
    affiliate: Affiliate
    account_name: str
    email: str
    statement: Statement


class AffiliateRepository(Protocol):
    async def add(self, affiliate: Affiliate) -> Affiliate: ...
    async def save(self, affiliate: Affiliate) -> None:
        """Write the application's status and payout method as given."""
        ...

    async def get(self, affiliate_id: int) -> Affiliate | None: ...
    async def get_by_account(self, account_id: int) -> Affiliate | None: ...
    async def get_by_code(self, code: str) -> Affiliate | None: ...
    async def lock(self, affiliate_id: int) -> None:
        """Serialise, until commit, transactions that read and then add to its ledger."""
        ...

    async def applications(self) -> list[Application]:
        """Every application, pending first, then the newest."""
        ...

    async def approved_ids(self) -> list[int]: ...
    async def add_click(self, affiliate_id: int, day: str) -> None: ...
    async def add_referral(
        self, account_id: int, affiliate_id: int, clicked_at: datetime, now: datetime
    ) -> bool:
        """Attribute the account; False when it is attributed already (the first touch stays)."""
        ...

    async def referral_of(self, account_id: int) -> int | None:
        """The id of the affiliate that referred the account."""
        ...

    async def add_entry(self, entry: LedgerEntry) -> bool:
        """Append the row; False when one with its key exists (recorded already)."""
        ...

    async def entries_for_order(self, order_id: str) -> list[LedgerEntry]: ...
    async def totals(self, affiliate_id: int) -> Totals: ...
    async def month_sums(self, affiliate_id: int) -> dict[str, tuple[int, int]]:
        """Per month with rows: (its commissions less its clawbacks, the sum of all its rows)."""
        ...

    async def first_open_month(self, affiliate_id: int) -> str | None:
        """The month after its last statement; the month it was approved in when it has none."""
        ...

    async def add_statement(self, statement: Statement) -> None: ...
    async def statements(self, affiliate_id: int) -> list[Statement]:
        """Newest first."""
        ...

    async def payouts(self, month: str) -> list[Payout]:
        """The statements of `month` that pay out, with their affiliate."""
        ...


# --- money and months, pure ----------------------------------------------------------------------


def commission_on(amount_cents: int) -> int:
    """30% of a payment, to the nearest cent (half a cent up)."""
    return (amount_cents * COMMISSION_PERCENT + 50) // 100


def clawback_for(commission_cents: int, amount_cents: int, refunded_cents: int) -> int:
    """The share of a commission that `refunded_cents` of an `amount_cents` order takes back,
    to the nearest cent; all of it for a full refund."""
    if amount_cents <= 0 or refunded_cents <= 0:
        return 0
    refunded = min(refunded_cents, amount_cents)
    return (2 * commission_cents * refunded + amount_cents) // (2 * amount_cents)


def payout_due(balance_cents: int) -> int:
    """What a statement pays: the whole balance from $50, nothing below (it rolls over)."""
    return balance_cents if balance_cents >= MINIMUM_PAYOUT_CENTS else 0


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def check_month(month: str) -> str:
    if not MONTH.match(month):
        raise InvalidInput("A month is written YYYY-MM, e.g. 2030-01.", field="month")
    return month


def following_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year + 1}-01" if number == 12 else f"{year}-{number + 1:02d}"


def payable_on(month: str) -> date:
    """The payout date of a month's statement: the 15th of the next month."""
    following = following_month(month)
    return date(int(following[:4]), int(following[5:]), PAYOUT_DAY)


def last_closable_month(now: datetime) -> str:
    """The latest month whose statement is due at `now` (from the 15th of the month after it)."""
    current = now.astimezone(UTC)
    year, number = current.year, current.month - (1 if current.day >= PAYOUT_DAY else 2)
    if number < 1:
        year, number = year - 1, number + 12
    return f"{year}-{number:02d}"


def months_between(first: str, last: str) -> list[str]:
    months: list[str] = []
    month = first
    while month <= last:
        months.append(month)
        month = following_month(month)
    return months


def cookie_value(code: str, clicked_at: datetime) -> str:
    return f"{code}.{int(clicked_at.timestamp())}"


def read_cookie(value: str | None, now: datetime) -> tuple[str, datetime] | None:
    """The code and click time of a referral cookie still inside the 90-day window."""
    if not value or len(value) > 40 or "." not in value:
        return None
    code, _, stamp = value.partition(".")
    if not stamp.isdigit() or len(code) != CODE_LENGTH:
        return None
    clicked_at = datetime.fromtimestamp(int(stamp), UTC)
    if not now - ATTRIBUTION_WINDOW <= clicked_at <= now:
        return None
    return code, clicked_at


def same_person(email: str, other: str) -> bool:
    """Whether two addresses reach the same mailbox, as far as we can tell: case, a `+tag`,
    and Gmail's ignored dots do not make a different person."""
    return _mailbox_of(email) == _mailbox_of(other)


def _mailbox_of(email: str) -> str:
    local, _, domain = email.lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


# --- recording orders (called inside the billing webhook's transaction) --------------------------


async def record_order(uow: UnitOfWork, order: PaidOrder, now: datetime) -> str:
    """The commission of a referred customer's paid order, and the clawback of what was
    refunded of it, in the caller's transaction; what it recorded."""
    if order.account_ref is None or not order.account_ref.isdigit():
        return ""
    account_id = int(order.account_ref)
    referral = await uow.affiliates.referral_of(account_id)
    if referral is None:
        return ""
    affiliate = await uow.affiliates.get(referral)
    if affiliate is None or affiliate.id is None or affiliate.account_id == account_id:
        return ""  # an affiliate never earns on its own account's payments
    await uow.affiliates.lock(affiliate.id)
    commission = commission_on(order.amount_cents)
    recorded: list[str] = []
    if commission > 0 and await uow.affiliates.add_entry(
        LedgerEntry(
            affiliate.id,
            f"commission:{order.order_id}",
            LedgerKind.COMMISSION,
            commission,
            month_of(order.occurred_at),
            order.occurred_at,
            now,
            order.order_id,
            account_id,
        )
    ):
        recorded.append(f"commission {commission}")
    if order.refunded_cents > 0:
        # Polar reports the order's refunded amount so far: take back the part of the
        # commission not taken back by earlier refunds of it.
        already = -sum(
            entry.amount_cents
            for entry in await uow.affiliates.entries_for_order(order.order_id)
            if entry.kind == LedgerKind.CLAWBACK
        )
        due = clawback_for(commission, order.amount_cents, order.refunded_cents) - already
        if due > 0 and await uow.affiliates.add_entry(
            LedgerEntry(
                affiliate.id,
                f"clawback:{order.order_id}:{order.refunded_cents}",
                LedgerKind.CLAWBACK,
                -due,
                month_of(now),
                now,
                now,
                order.order_id,
                account_id,
            )
        ):
            recorded.append(f"clawback {due}")
    return ", ".join(recorded)


# --- the service ---------------------------------------------------------------------------------


class AffiliateService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, accounts: AccountService, public_url: str
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._accounts = accounts
        self._public_url = public_url.rstrip("/")

    def now(self) -> datetime:
        return self._clock.now()

    def link(self, code: str) -> str:
        return f"{self._public_url}/r/{code}"

    # --- the affiliate's side --------------------------------------------------------------------

    async def apply(self, viewer: Viewer, *, website: str, pitch: str) -> Affiliate:
        """Apply for the program (again, after a rejection); the operator reviews it."""
        require_manager(viewer, "apply to the affiliate program")
        website, pitch = website.strip(), pitch.strip()
        if not website.startswith(("https://", "http://")) or len(website) > MAX_WEBSITE:
            raise InvalidInput(
                "Give the address of your website or channel, starting with https://.",
                field="website",
            )
        if not pitch or len(pitch) > MAX_PITCH:
            raise InvalidInput(
                f"Say in up to {MAX_PITCH} characters how you will promote Mailmark.",
                field="pitch",
            )
        now = self._clock.now()
        async with self._uow() as uow:
            found = await uow.affiliates.get_by_account(viewer.account_id)
            if found is not None and found.status != AffiliateStatus.REJECTED:
                raise Conflict(
                    "This account has applied already."
                    if found.status == AffiliateStatus.PENDING
                    else "This account is an affiliate already."
                )
            if found is None:
                affiliate = await uow.affiliates.add(
                    Affiliate(
                        viewer.account_id, _new_code(), AffiliateStatus.PENDING, website, pitch, now
                    )
                )
            else:
                affiliate = replace(
                    found,
                    status=AffiliateStatus.PENDING,
                    website=website,
                    pitch=pitch,
                    applied_at=now,
                    reviewed_at=None,
                )
                await uow.affiliates.save(affiliate)
            await uow.commit()
        return affiliate

    async def mine(self, viewer: Viewer) -> Affiliate | None:
        async with self._uow(read_only=True) as uow:
            return await uow.affiliates.get_by_account(viewer.account_id)

    async def dashboard(self, viewer: Viewer) -> Dashboard:
        """Clicks, sign-ups, paying customers, earned, pending and paid, and the statements."""
        affiliate = await self._approved(viewer)
        assert affiliate.id is not None
        async with self._uow(read_only=True) as uow:
            totals = await uow.affiliates.totals(affiliate.id)
            statements = await uow.affiliates.statements(affiliate.id)
        return Dashboard(affiliate, self.link(affiliate.code), totals, statements)

    async def set_payout_method(
        self,
        viewer: Viewer,
        method: PayoutMethod,
        *,
        paypal_email: str | None = None,
        bank_details: str | None = None,
    ) -> Affiliate:
        """PayPal (an address) or a bank transfer (SWIFT/SEPA details, kept sealed)."""
        require_manager(viewer, "set where commissions are paid")
        affiliate = await self._approved(viewer)
        if method == PayoutMethod.PAYPAL:
            email = check_email(paypal_email or "")
            changed = replace(
                affiliate, payout_method=method, paypal_email=email, bank_details=None
            )
        else:
            details = (bank_details or "").strip()
            if not details or len(details) > MAX_BANK_DETAILS:
                raise InvalidInput(
                    "Give the account holder, IBAN or account number, and BIC/SWIFT.",
                    field="bankDetails",
                )
            changed = replace(
                affiliate, payout_method=method, paypal_email=None, bank_details=details
            )
        async with self._uow() as uow:
            await uow.affiliates.save(changed)
            await uow.commit()
        return changed

    async def _approved(self, viewer: Viewer) -> Affiliate:
        affiliate = await self.mine(viewer)
        if affiliate is None or affiliate.status != AffiliateStatus.APPROVED:
            raise NotFound("This account is not an approved affiliate.")
        return affiliate

    # --- the public link and sign-up -------------------------------------------------------------

    async def click(self, code: str) -> Affiliate | None:
        """Count a click on an approved affiliate's link; None for any other code."""
        if len(code) != CODE_LENGTH:
            return None
        now = self._clock.now()
        async with self._uow() as uow:
            affiliate = await uow.affiliates.get_by_code(code)
            if affiliate is None or affiliate.id is None:
                return None
            if affiliate.status != AffiliateStatus.APPROVED:
                return None
            await uow.affiliates.add_click(affiliate.id, now.strftime("%Y-%m-%d"))
            await uow.commit()
        return affiliate

    async def attribute_signup(
        self, account_id: int, cookie: str | None, *, signed_in_account: int | None = None
    ) -> bool:
        """Record which affiliate referred a new account, from the browser's referral cookie
        (first touch, within 90 days). Refused as self-referral when the browser is signed in to
        the affiliate's own account, or the new owner's address is one of its users'."""
        now = self._clock.now()
        found = read_cookie(cookie, now)
        if found is None:
            return False
        code, clicked_at = found
        async with self._uow() as uow:
            affiliate = await uow.affiliates.get_by_code(code)
            if affiliate is None or affiliate.id is None:
                return False
            if affiliate.status != AffiliateStatus.APPROVED:
                return False
            if signed_in_account == affiliate.account_id:
                return False
            theirs = await uow.users.list_for_account(affiliate.account_id)
            owners = await uow.users.list_for_account(account_id)
            if any(same_person(a.email, b.email) for a in theirs for b in owners):
                return False
            added = await uow.affiliates.add_referral(account_id, affiliate.id, clicked_at, now)
            await uow.commit()
        return added

    # --- the operator's side ---------------------------------------------------------------------

    async def applications(self, viewer: Viewer) -> list[Application]:
        await self._accounts.require_operator(viewer)
        async with self._uow(read_only=True) as uow:
            return await uow.affiliates.applications()

    async def review(self, viewer: Viewer, affiliate_id: int, *, approve: bool) -> Affiliate:
        await self._accounts.require_operator(viewer)
        async with self._uow() as uow:
            affiliate = await uow.affiliates.get(affiliate_id)
            if affiliate is None:
                raise NotFound("No such application.")
            if affiliate.status != AffiliateStatus.PENDING:
                raise Conflict(f"This application was {affiliate.status} already.")
            reviewed = replace(
                affiliate,
                status=AffiliateStatus.APPROVED if approve else AffiliateStatus.REJECTED,
                reviewed_at=self._clock.now(),
            )
            await uow.affiliates.save(reviewed)
            await uow.commit()
        return reviewed

    async def close_statements(self) -> int:
        """Write every statement due by now that is not written yet, with its payout row when
        the balance reaches the minimum; how many were written. Idempotent (maintenance runs it
        on every pass, on whichever node leads)."""
        now = self._clock.now()
        last = last_closable_month(now)
        written = 0
        async with self._uow(read_only=True) as uow:
            approved = await uow.affiliates.approved_ids()
        for affiliate_id in approved:
            async with self._uow() as uow:
                await uow.affiliates.lock(affiliate_id)
                first = await uow.affiliates.first_open_month(affiliate_id)
                if first is None:
                    continue
                months = months_between(first, last)
                if not months:
                    continue
                # One read of the ledger per affiliate: the opening balance of each month is the
                # sum of every row of the months before it, this run's payouts included.
                sums = await uow.affiliates.month_sums(affiliate_id)
                opening = sum(net for month, (_, net) in sums.items() if month < first)
                for month in months:
                    earned, net = sums.get(month, (0, 0))
                    payout = await self._close(uow, affiliate_id, month, opening, earned, now)
                    opening += net - payout
                    written += 1
                await uow.commit()
        return written

    async def _close(
        self,
        uow: UnitOfWork,
        affiliate_id: int,
        month: str,
        opening: int,
        earned: int,
        now: datetime,
    ) -> int:
        """Write the month's statement and its payout row; the amount paid out."""
        payout = payout_due(opening + earned)
        due = payable_on(month)
        statement = Statement(affiliate_id, month, opening, earned, payout, due, now)
        await uow.affiliates.add_statement(statement)
        if payout:
            paid_at = datetime(due.year, due.month, due.day, tzinfo=UTC)
            await uow.affiliates.add_entry(
                LedgerEntry(
                    affiliate_id,
                    f"payout:{affiliate_id}:{month}",
                    LedgerKind.PAYOUT,
                    -payout,
                    month,
                    paid_at,
                    now,
                )
            )
        return payout

    async def payouts(self, viewer: Viewer, month: str) -> list[Payout]:
        """The payouts of a month's statements (paid on the 15th of the next month)."""
        await self._accounts.require_operator(viewer)
        async with self._uow(read_only=True) as uow:
            return await uow.affiliates.payouts(check_month(month))

    async def payouts_csv(self, viewer: Viewer, month: str) -> str:
        """The month's payouts for a spreadsheet or a bank's bulk upload: one line each, with
        the method and its details."""
        lines = await self.payouts(viewer, month)
        header = [
            "affiliate",
            "account",
            "email",
            "month",
            "payable_on",
            "amount",
            "currency",
            "method",
            "paypal_email",
            "bank_details",
        ]
        rows = [
            [
                line.affiliate.code,
                line.account_name,
                line.email,
                line.statement.month,
                line.statement.payable_on.isoformat(),
                format_cents(line.statement.payout_cents),
                "USD",
                line.affiliate.payout_method or "",
                line.affiliate.paypal_email or "",
                line.affiliate.bank_details or "",
            ]
            for line in lines
        ]
        # csv_line writes a cell that a spreadsheet would run as a formula as text.
        return "".join(csv_line(row) for row in [header, *rows])


def format_cents(cents: int) -> str:
    """12345 → "123.45", with integers only."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"
