"""OpenAPI documentation helpers: request/response examples and `x-codeSamples` per route.

The explorer at /schema shows, for every operation, a cURL command and the same call through the
`mailmark-sdk` npm package, beside the example body and answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from litestar.openapi.spec import Operation

BASE_URL = "https://mail.example.com"
EXAMPLE_KEY = "dm_live_your_api_key"
SDK_SETUP = (
    "import { Mailmark } from 'mailmark-sdk';\n"
    f"const client = new Mailmark('{EXAMPLE_KEY}', {{ baseUrl: '{BASE_URL}' }});\n"
)


def curl(method: str, path: str, body: Any | None) -> str:
    lines = [f"curl -X {method} {BASE_URL}{path} \\", f'  -H "Authorization: Bearer {EXAMPLE_KEY}"']
    if body is not None:
        lines[-1] += " \\"
        lines += ['  -H "Content-Type: application/json" \\', f"  -d '{json.dumps(body)}'"]
    return "\n".join(lines)


def samples(
    method: str,
    path: str,
    *,
    sdk: str,
    body: Any | None = None,
    response: Any | None = None,
    status: int = 200,
) -> type[Operation]:
    """An `operation_class` whose schema carries these examples and code samples."""
    code = [
        {"lang": "Shell", "label": "cURL", "source": curl(method, path, body)},
        {"lang": "JavaScript", "label": "mailmark-sdk", "source": SDK_SETUP + sdk},
    ]

    @dataclass
    class DocumentedOperation(Operation):
        x_code_samples: list[dict[str, str]] = field(
            default_factory=lambda: code, metadata={"alias": "x-codeSamples"}
        )

        def to_schema(self) -> dict[str, Any]:
            schema = super().to_schema()
            if body is not None:
                content = schema.get("requestBody", {}).get("content", {})
                for media in content.values():
                    media["example"] = body
            if response is not None:
                answer = schema.get("responses", {}).get(str(status), {})
                for media in answer.get("content", {}).values():
                    media["example"] = response
            return schema

    return DocumentedOperation
