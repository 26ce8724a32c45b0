"""The request bodies that change the registry, typed (see :mod:`mlservice.bodies`).

Their shape is refused with 400 naming the field; what a value means (a
version that does not exist, a webhook URL the service will not call) is
checked after, by :mod:`.registered_models` and the route, with 422.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..bodies import HEX_ID, REGISTERED_NAME, Body
from ..errors import Invalid

#: Tags: at most this many per registered model.
MAX_TAGS = 50
TAG_KEY = "^[A-Za-z0-9_.:/-]{1,64}$"
TagKey = Annotated[str, Meta(pattern=TAG_KEY)]
TagValue = Annotated[str, Meta(max_length=256)]
Description = Annotated[str, Meta(max_length=5000)]
WebhookSecret = Annotated[str, Meta(min_length=16, max_length=256)]
#: A version number as a JSON object key (``{"3": 90}``).
VERSION_KEY = "^[1-9][0-9]{0,8}$"
VersionNumber = Annotated[int, Meta(ge=1, le=999_999_999)]
Weight = Annotated[int, Meta(ge=1, le=1_000_000)]
#: Versions one alias may split its traffic between.
MAX_SPLIT = 10

_TAG_COMPLAINT = (
    f"must be a JSON object of at most {MAX_TAGS} tags: keys of 1-64 letters, digits or "
    "'_', '.', ':', '/', '-'; values strings of at most 256 characters"
)
_WEBHOOK_URL_COMPLAINT = "must be an http:// or https:// URL (a string)"
_WEBHOOK_SECRET_COMPLAINT = "must be a string of 16 to 256 characters"


class NewRegisteredModel(Body):
    """A ``POST /resource/registry`` body (the contract's ``NewRegisteredModel``)."""

    name: Annotated[str, Meta(pattern=f"^{REGISTERED_NAME}$")]
    description: Description = ""
    tags: Annotated[dict[TagKey, TagValue], Meta(max_length=MAX_TAGS)] = msgspec.field(
        default_factory=dict
    )
    webhook_url: str | None = None
    webhook_secret: WebhookSecret | None = None

    complaints = {
        "name": "must be 1-64 letters, digits or '.', '_', '-', starting with a letter or digit",
        "description": "must be a string of at most 5000 characters",
        "tags": _TAG_COMPLAINT,
        "webhook_url": _WEBHOOK_URL_COMPLAINT,
        "webhook_secret": _WEBHOOK_SECRET_COMPLAINT,
    }
    example = '{"name": "churn", "description": "...", "tags": {"team": "risk"}}'


class RegisteredModelChange(Body):
    """A ``PATCH /resource/registry/{name}`` body (the contract's ``RegisteredModelUpdate``).

    A field left out is left as it is. ``tags`` are merged: a tag set to ``null``
    is removed. ``webhook_url: null`` removes the webhook. ``log_predictions``
    keeps every prediction by this name in the prediction log of the model it reaches.
    """

    description: Description | UnsetType = UNSET
    tags: Annotated[dict[TagKey, TagValue | None], Meta(max_length=MAX_TAGS)] | UnsetType = UNSET
    webhook_url: str | None | UnsetType = UNSET
    webhook_secret: WebhookSecret | UnsetType = UNSET
    log_predictions: bool | UnsetType = UNSET

    complaints = {
        "description": "must be a string of at most 5000 characters",
        "tags": _TAG_COMPLAINT + " (or null, to remove the tag)",
        "log_predictions": "must be true or false",
        "webhook_url": _WEBHOOK_URL_COMPLAINT + ", or null to remove the webhook",
        "webhook_secret": _WEBHOOK_SECRET_COMPLAINT,
    }
    example = '{"description": "...", "tags": {"team": "risk", "old": null}}'


class NewVersion(Body):
    """A ``POST /resource/registry/{name}/versions`` body (the contract's ``NewVersion``)."""

    model_id: Annotated[str, Meta(pattern=HEX_ID)]

    complaints = {"model_id": "must be a model id (32 hexadecimal digits)"}
    example = '{"model_id": "2d20e0ea5e2f473f8efe821907b025d5"}'


class AliasChange(Body):
    """A ``PUT /resource/registry/{name}/aliases/{alias}`` body (the contract's ``AliasChange``):
    ``version``, or a weighted split ``versions``; maybe a ``shadow`` version."""

    version: VersionNumber | None = None
    versions: (
        Annotated[
            dict[Annotated[str, Meta(pattern=VERSION_KEY)], Weight],
            Meta(min_length=1, max_length=MAX_SPLIT),
        ]
        | None
    ) = None
    shadow: VersionNumber | None = None

    complaints = {
        "version": "must be a version number (an integer from 1)",
        "versions": (
            f"must be a JSON object of 1 to {MAX_SPLIT} version numbers (as strings) to "
            'integer weights from 1 to 1000000, e.g. {"3": 90, "4": 10}'
        ),
        "shadow": "must be a version number (an integer from 1), or null",
    }
    example = '{"version": 3} or {"versions": {"3": 90, "4": 10}, "shadow": 5}'

    def weights(self) -> dict[int, int]:
        """Version -> weight: the one version (weight 1), or the split; 422 if neither or
        both are given, or if the shadow is also served."""
        if (self.version is None) == (self.versions is None):
            raise Invalid(
                "send either 'version' (one version) or 'versions' (a split, e.g. "
                '{"3": 90, "4": 10}), not both and not neither'
            )
        weights = {self.version: 1} if self.version is not None else {}
        weights |= {int(number): weight for number, weight in (self.versions or {}).items()}
        if self.shadow is not None and self.shadow in weights:
            raise Invalid(
                f"version {self.shadow} cannot be both served and the shadow: a shadow "
                "version gets copies of requests another version answers"
            )
        return weights


def check_webhook_pair(url: str | None | UnsetType, secret: str | None | UnsetType) -> None:
    """A webhook URL needs its secret (the deliveries are signed with it), and a secret
    its URL; 422 if not."""
    if isinstance(url, str) and not isinstance(secret, str):
        raise Invalid(
            "'webhook_secret' (16 to 256 characters) is required with 'webhook_url': each "
            "delivery is signed with it so your receiver can check it came from this service"
        )
    if isinstance(secret, str) and not isinstance(url, str):
        raise Invalid("'webhook_secret' needs a 'webhook_url'")
