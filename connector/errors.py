"""One exception hierarchy for the connector.

Inbound errors (signature, payload, content type, unsupported event) map to HTTP answers in the
web tier; destination errors tell the job layer whether to retry. Nothing else is raised on
purpose, so anything outside this tree is a bug.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""


class ConfigError(ConnectorError):
    """The settings or the tenants file are invalid; raised at start-up, naming the bad key."""


class SignatureError(ConnectorError):
    """The request is not authentic: missing, malformed or wrong signature/token (HTTP 401)."""


class PayloadError(ConnectorError):
    """The payload is well-signed but unusable: unparseable, missing fields, bad amounts (400)."""


class UnsupportedEvent(ConnectorError):  # noqa: N818 - a signal, not a failure
    """A valid event the connector deliberately ignores; carries the reason shown to the sender."""

    def __init__(self, reason: str, *, counter: str = "unsupported") -> None:
        super().__init__(reason)
        self.reason = reason
        self.counter = counter


class DestinationError(ConnectorError):
    """An outbound HTTP call failed."""

    def __init__(
        self,
        message: str,
        *,
        destination: str = "",
        status: int | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.destination = destination
        self.status = status
        self.body = body


class RetriableDestinationError(DestinationError):
    """429, 5xx, timeout or connection failure: try again later (after `retry_after` if given)."""

    def __init__(
        self,
        message: str,
        *,
        destination: str = "",
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, destination=destination, status=status, body=body)
        self.retry_after = retry_after


class FatalDestinationError(DestinationError):
    """Any other 4xx (or an unusable answer): retrying cannot help; the job ends failed."""


class StaleContactError(FatalDestinationError):
    """The platform no longer knows the contact id the connector sent (deleted or merged there
    since it was cached): the platform's documented "unknown contact" answer.

    ``deliver`` forgets the cached id, resolves the contact again and posts once more, in the
    same attempt; raised again (or anywhere else), it fails the job like any fatal answer.
    """

    def __init__(
        self, message: str, *, destination: str = "", status: int | None = None, body: str = "", contact_id: str = ""
    ) -> None:
        super().__init__(message, destination=destination, status=status, body=body)
        self.contact_id = contact_id


class ErasureRequested(UnsupportedEvent):
    """A source asks the connector to forget a guest (e.g. a GDPR deletion); it yields no activity.

    ``subject_hashes`` are :func:`connector.activities.hash_identifier` digests of the guest's
    identifiers (never the identifiers themselves). The ingest job answers it by enqueueing the
    ``erase_guest`` job; anything that does not know about erasure treats it as ignored.
    """

    def __init__(self, reason: str, *, subject_hashes: tuple[str, ...], counter: str = "erasure") -> None:
        super().__init__(reason, counter=counter)
        self.subject_hashes = subject_hashes
