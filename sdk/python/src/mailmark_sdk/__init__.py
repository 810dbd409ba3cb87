"""Mailmark REST API client: `Mailmark` (sync) and `AsyncMailmark` (async), on httpx."""

from mailmark_sdk._client import DEFAULT_BASE_URL, VERSION, AsyncMailmark, Mailmark
from mailmark_sdk.errors import (
    APIConnectionError,
    AuthenticationError,
    ConflictError,
    MailmarkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from mailmark_sdk.types import (
    Attachment,
    CampaignSendResult,
    CancelResult,
    Email,
    EmailPage,
    Mailbox,
    NotCanceled,
    SenderGroup,
    SendResult,
)

__version__ = VERSION

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "AsyncMailmark",
    "Attachment",
    "AuthenticationError",
    "CampaignSendResult",
    "CancelResult",
    "ConflictError",
    "Email",
    "EmailDetail",
    "EmailEvent",
    "EmailPage",
    "EmailRecipient",
    "Mailbox",
    "Mailmark",
    "MailmarkError",
    "NotCanceled",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "SendResult",
    "SenderGroup",
    "ServerError",
    "Suppression",
    "SuppressionPage",
    "ValidationError",
    "Webhook",
    "WebhookDelivery",
]
