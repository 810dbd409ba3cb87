"""An affiliate's referral link, `GET /r/{code}`: count the click, keep the affiliate in a 90-day
cookie (the first one stays), and send the browser on to sign-up."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect

from mailmark.core.affiliates import (
    ATTRIBUTION_WINDOW,
    AffiliateService,
    cookie_value,
    read_cookie,
)
from mailmark.web.api.app.session import REFERRAL_COOKIE, referral_cookie

SIGN_UP_PATH = "/sign-up"


def referral_link_handler(affiliates: AffiliateService) -> HTTPRouteHandler:
    @get("/r/{code:str}", operation_id="followReferralLink", include_in_schema=False)
    async def follow_referral_link(
        request: Request[Any, Any, Any], code: FromPath[str]
    ) -> Redirect:
        """Always a redirect to sign-up, so an unknown or unapproved code tells nothing; only an
        approved affiliate's code sets the cookie, and never over a live one (first touch)."""
        redirect = Redirect(SIGN_UP_PATH, status_code=302)
        redirect.headers["Cache-Control"] = "no-store"
        affiliate = await affiliates.click(code)
        if affiliate is None:
            return redirect
        now = affiliates.now()
        if read_cookie(request.cookies.get(REFERRAL_COOKIE), now) is None:
            redirect.cookies.append(
                referral_cookie(
                    request,
                    cookie_value(affiliate.code, now),
                    int(ATTRIBUTION_WINDOW.total_seconds()),
                )
            )
        return redirect

    return follow_referral_link
