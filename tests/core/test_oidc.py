"""The pure parts of OpenID Connect sign-in: PKCE's S256 challenge and the account name a new
trial account gets from the person's name or email."""

from __future__ import annotations

import pytest

from mailmark.core.accounts import check_account_name
from mailmark.core.oidc import account_name_for, code_challenge


def test_s256_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize(
    ("email", "name", "expected"),
    [
        ("ada@example.test", "Ada Lovelace", "Ada Lovelace"),
        ("ada@example.test", None, "ada"),
        ("ada@example.test", "   ", "ada"),
        ("jose@example.test", "José Núñez", "Jos N ez"),
        ("li@example.test", "李小龙", "li"),
        ("x+tag@example.test", "", "x tag"),
        ("___@example.test", "---", "Account"),
        ("a@example.test", "N" * 100, "N" * 63),
        ("a@example.test", "<script>alert(1)</script>", "script alert 1 script"),
    ],
)
def test_account_name_from_the_person(email: str, name: str | None, expected: str) -> None:
    derived = account_name_for(email, name)
    assert derived == expected
    check_account_name(derived)  # always a valid account name
