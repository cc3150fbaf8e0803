"""ORM models, one module per aggregate. Importing this package registers every table."""

from app.models.access import AccessRequest, Grant
from app.models.audit import AuditEvent, AuditHead
from app.models.base import Base
from app.models.catalogue import (
    Component,
    HubView,
    Model,
    Release,
    ReleaseFile,
    Stage,
    StoredObject,
    Transition,
)
from app.models.console import BrowserSession
from app.models.freshness import CacheInvalidation
from app.models.principals import ApiKey, Partner, PartnerAgreement, User
from app.models.safety import (
    SafetyHold,
    SafetyPolicy,
    SafetyReport,
    SafetyReportComponent,
    SafetyReportUpdate,
)
from app.models.schema import SchemaLineage
from app.models.signatures import ReleaseSignature
from app.models.tokens import IssuedToken, QuotaCounter, TokenFileStart
from app.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription

__all__ = [
    "AccessRequest",
    "ApiKey",
    "AuditEvent",
    "AuditHead",
    "Base",
    "BrowserSession",
    "CacheInvalidation",
    "Component",
    "Grant",
    "HubView",
    "IssuedToken",
    "Model",
    "Partner",
    "PartnerAgreement",
    "QuotaCounter",
    "Release",
    "ReleaseFile",
    "ReleaseSignature",
    "SafetyHold",
    "SafetyPolicy",
    "SafetyReport",
    "SafetyReportComponent",
    "SafetyReportUpdate",
    "SchemaLineage",
    "Stage",
    "StoredObject",
    "TokenFileStart",
    "Transition",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
]
