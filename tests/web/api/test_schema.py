"""The OpenAPI document and explorer, and schemathesis fuzzing every /v1 operation from it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.web.api.conftest import Tenant

EXAMPLES_PER_OPERATION = 25


async def test_every_v1_operation_is_documented_with_samples(acme: Tenant) -> None:
    response = await acme.client.get("/schema/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        if path.startswith("/v1")
        for method, op in item.items()
    ]
    assert len(operations) >= 15
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("operationId") and op.get("summary"), where
        labels = {sample["label"] for sample in op.get("x-codeSamples", [])}
        assert labels == {"cURL", "mailmark-sdk"}, where
        if "requestBody" in op:
            assert "example" in op["requestBody"]["content"]["application/json"], where
    assert "bearerAuth" in schema["components"]["securitySchemes"]


async def test_send_documents_attachments_and_tags_and_emails_filter_by_tag(
    acme: Tenant,
) -> None:
    schema = (await acme.client.get("/schema/openapi.json")).json()

    send = schema["paths"]["/v1/send"]["post"]
    body = send["requestBody"]["content"]["application/json"]
    assert {"filename", "content", "contentType", "contentId"} <= set(
        body["example"]["attachments"][1]
    )
    assert body["example"]["tags"] == ["welcome"]
    fields = schema["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"attachments", "tags"} <= set(fields["properties"])
    listing = schema["paths"]["/v1/emails"]["get"]
    assert "tag" in {parameter["name"] for parameter in listing["parameters"]}
    assert any("attachments" in sample["source"] for sample in send["x-codeSamples"])


async def test_the_explorer_is_served(anonymous: httpx.AsyncClient) -> None:
    page = await anonymous.get("/schema")

    assert page.status_code == 200
    assert "openapi.json" in page.text and "<html" in page.text.lower()


def _cases(schema: Any) -> list[Any]:
    """Up to EXAMPLES_PER_OPERATION generated requests per /v1 operation, from its schema."""
    collected: list[Any] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/v1"):
            continue
        collected += _examples(operation)
    return collected


def _examples(operation: Any) -> list[Any]:
    found: list[Any] = []

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        # The same requests every run, so the suite is repeatable; widen the search by hand with
        # more examples when changing the API.
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy())
    def collect(case: Any) -> None:
        found.append(case)

    collect()
    return found


@pytest.mark.filterwarnings("ignore")
async def test_fuzzed_requests_never_get_a_server_error(acme: Tenant) -> None:
    raw = (await acme.client.get("/schema/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(raw)
    cases = _cases(schema)
    assert len(cases) > 100

    failures = []
    for case in cases:
        kwargs = case.as_transport_kwargs(base_url=str(acme.client.base_url))
        headers = {**(kwargs.get("headers") or {}), "Authorization": f"Bearer {acme.key}"}
        request = acme.client.build_request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs.get("params"),
            headers=headers,
            json=kwargs.get("json"),
            content=kwargs.get("data") if isinstance(kwargs.get("data"), (bytes, str)) else None,
        )
        response = await acme.client.send(request)
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
            )
        elif response.status_code >= 400:
            body = response.json()
            if set(body) != {"error"} or set(body["error"]) != {"code", "message", "field"}:
                failures.append(f"{case.method} {case.formatted_path}: not the error shape {body}")
    print(f"{len(cases)} fuzzed requests")
    assert failures == []
