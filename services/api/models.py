"""Request and response bodies.

Request bodies are strict: a JSON string is never taken for a number or a boolean, so a client
sending the wrong type gets a 422 naming the field instead of a silently coerced value.
Unknown extra fields are ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from services.common import tokens

AgentName = Annotated[str, StringConstraints(pattern=tokens.AGENT_NAME.pattern)]
ViewName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
# An address as RFC 5321 writes it, in ASCII: dot-separated atoms, then a host name. Quoted local
# parts and address literals are refused; everything accepted is a valid `format: email`.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*$")
MAX_LOCAL_PART = 64

MAX_SEED_TICKETS = 500_000


class _Request(BaseModel):
    model_config = ConfigDict(strict=True)


class NewTicket(_Request):
    subject: str = Field(min_length=1, max_length=200)
    customer: str = Field(
        min_length=3,
        max_length=200,
        description="an email address",
        # The validator below checks this pattern (and a local part of at most 64 characters).
        json_schema_extra={"format": "email", "pattern": EMAIL.pattern},
    )
    view: ViewName = "inbox"
    bot: bool = Field(default=False, description="the customer gets automated replies")
    assignee: AgentName | None = None

    @field_validator("customer")
    @classmethod
    def _customer_is_an_address(cls, customer: str) -> str:
        if not EMAIL.match(customer) or len(customer.partition("@")[0]) > MAX_LOCAL_PART:
            raise ValueError("must be an email address such as name@example.com")
        return customer


class NewMessage(_Request):
    body: str = Field(min_length=1, max_length=10_000)
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="client idempotency key: a retry with the same key stores nothing new",
    )
    author: Literal["customer", "agent"] = "customer"


class BulkAction(_Request):
    # The tag action needs its tag: said in the schema too, so generated clients know.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"action": {"const": "tag"}}},
            "then": {"required": ["tag"], "properties": {"tag": {"type": "string"}}},
        }
    )

    action: Literal["close", "tag", "reopen"]
    tag: str | None = Field(default=None, min_length=1, max_length=100, validate_default=True)

    @field_validator("tag")
    @classmethod
    def _tag_goes_with_tag_action(cls, tag: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("action") == "tag" and tag is None:
            raise ValueError("the tag action needs a tag")
        return tag


class SeedRequest(_Request):
    tickets: int = Field(ge=1, le=MAX_SEED_TICKETS)
    assignee: AgentName | None = None


class AvailabilityUpdate(_Request):
    status: Literal["online", "busy", "away", "offline"]


class PresenceUpdate(_Request):
    action: Literal["open", "close"]


class AssigneeUpdate(_Request):
    agent: AgentName


class FailpointUpdate(_Request):
    value: Any = Field(description="any JSON value; its meaning depends on the failpoint")


# Responses (documented in /openapi.json).


class Ticket(BaseModel):
    id: int
    subject: str
    customer: str
    view: str
    bot: bool
    assignee: str | None
    status: str
    created_at: float


class Message(BaseModel):
    id: str
    body: str
    author: str
    received_at: float
    processed: bool = Field(description="the worker has put it in the ticket's thread")


class TicketWithMessages(Ticket):
    messages: list[Message]


class MessageAccepted(BaseModel):
    id: str
    ticket_id: int
    event_id: str


class ViewCount(BaseModel):
    view: str
    count: int


class BulkAccepted(BaseModel):
    view: str
    events: int


class Seeded(BaseModel):
    created: int


class Availability(BaseModel):
    agent: str
    status: str


class Presence(BaseModel):
    ticket_id: int
    agents: list[str]


class Assignment(BaseModel):
    ticket_id: int
    agent: str


class Conversation(BaseModel):
    ticket_id: int
    subject: str
    last_activity: float


class ConversationPage(BaseModel):
    items: list[Conversation]
    next_cursor: int | None


class Typing(BaseModel):
    ticket_id: int
    agent: str


class Health(BaseModel):
    status: Literal["alive"]
    service: str
    switches: dict[str, bool] = Field(description="the resilience switches this process runs with")


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str]


class NotReady(BaseModel):
    error: Literal["not_ready"]
    detail: str
    checks: dict[str, str] = Field(description="each dependency: ok, or why not")


class Failpoints(BaseModel):
    failpoints: dict[str, Any] = Field(description="the failpoints set now and their values")
    known: dict[str, str] = Field(description="every failpoint name and what it does when set")


class FailpointSet(BaseModel):
    name: str
    value: Any


class FailpointCleared(BaseModel):
    name: str
    removed: bool
