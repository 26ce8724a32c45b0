"""The request and record types declared in the code are the ones ml-service.yml documents.

Each body type (:class:`mlservice.bodies.Body`) and record type is turned into
JSON Schema by msgspec and compared with its schema in the contract: the same
field names, the same required ones (for bodies, which refuse any other
field), and the same JSON types per field. A field added on one side only
fails here.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import yaml

from mlservice.accounts import NewUser, UserChange
from mlservice.config import DEFAULT_OPENAPI_FILE
from mlservice.monitoring.drift import ColumnDrift
from mlservice.monitoring.watch_request import ModelChange
from mlservice.registry.changes import (
    AliasChange,
    NewRegisteredModel,
    NewVersion,
    RegisteredModelChange,
)
from mlservice.registry.registry_records import (
    AliasRecord,
    HistoryEntry,
    Lineage,
    RegisteredModelRecord,
    RegisteredModelView,
    ShadowCounts,
    VersionView,
)
from mlservice.serving.scoring import ScoringRequest
from mlservice.serving.v2_protocol import InferenceRequest, RequestInput, RequestOutput
from mlservice.store.bundles import SchemaColumn
from mlservice.store.records import ColumnProfile, DatasetRecord, ModelRecord
from mlservice.store.search_records import SearchView, Trial, TrialCounts
from mlservice.training.request import TrainingRequest
from mlservice.training.search_request import SearchRequest
from mlservice.training.search_space import Distribution

#: code type -> (contract schema, fields the code keeps but the API never shows)
PAIRS: dict[Any, tuple[str, frozenset[str]]] = {
    TrainingRequest: ("NewModel", frozenset()),
    ScoringRequest: ("ScoringRequest", frozenset()),
    NewUser: ("NewUser", frozenset()),
    UserChange: ("UserUpdate", frozenset()),
    ModelRecord: ("Model", frozenset()),
    ModelChange: ("ModelChange", frozenset()),
    ColumnDrift: ("ColumnDrift", frozenset()),
    DatasetRecord: ("Dataset", frozenset({"string_columns"})),
    ColumnProfile: ("DatasetColumn", frozenset()),
    SchemaColumn: ("InputColumn", frozenset()),
    NewRegisteredModel: ("NewRegisteredModel", frozenset()),
    RegisteredModelChange: ("RegisteredModelUpdate", frozenset()),
    NewVersion: ("NewVersion", frozenset()),
    AliasChange: ("AliasChange", frozenset()),
    RegisteredModelRecord: ("RegisteredModel", frozenset()),
    RegisteredModelView: ("RegisteredModelDetail", frozenset()),
    VersionView: ("RegisteredVersion", frozenset()),
    Lineage: ("RegistryLineage", frozenset()),
    ShadowCounts: ("ShadowCounts", frozenset()),
    AliasRecord: ("RegistryAlias", frozenset({"models"})),
    HistoryEntry: ("RegistryHistoryEntry", frozenset()),
    InferenceRequest: ("V2InferenceRequest", frozenset()),
    RequestInput: ("V2RequestInput", frozenset()),
    RequestOutput: ("V2RequestOutput", frozenset()),
    SearchRequest: ("NewSearch", frozenset()),
    Distribution: ("SearchDistribution", frozenset()),
    SearchView: ("Search", frozenset({"refit_task_id"})),
    Trial: ("SearchTrial", frozenset({"task_id"})),
    TrialCounts: ("SearchTrialCounts", frozenset()),
}
BODIES = (
    TrainingRequest,
    ScoringRequest,
    NewUser,
    UserChange,
    NewRegisteredModel,
    RegisteredModelChange,
    NewVersion,
    AliasChange,
    InferenceRequest,
    RequestInput,
    RequestOutput,
    SearchRequest,
)


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    schemas: dict[str, Any] = yaml.safe_load(DEFAULT_OPENAPI_FILE.read_text())["components"][
        "schemas"
    ]
    return schemas


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def json_types(schema: dict[str, Any], components: dict[str, Any]) -> set[str]:
    """The JSON types a (JSON Schema or OpenAPI) schema admits; ``any`` if it says none."""
    schema = _resolve(schema, components)
    if "allOf" in schema:
        found = set.intersection(*(json_types(part, components) for part in schema["allOf"]))
    elif "anyOf" in schema or "oneOf" in schema:
        parts = schema.get("anyOf") or schema.get("oneOf")
        found = set.union(*(json_types(part, components) for part in parts))
    elif "type" in schema:
        kind = schema["type"]
        found = set(kind) if isinstance(kind, list) else {kind}
    elif "enum" in schema:
        found = {type(value).__name__.replace("str", "string") for value in schema["enum"]}
    else:
        found = {"any"}
    if schema.get("nullable"):
        found.add("null")
    if "integer" in found:
        found.add("number")  # an integer field takes any JSON number's integer values
    return found


def code_schema(kind: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    (schema,), components = msgspec.json.schema_components(
        (kind,), ref_template="#/components/schemas/{name}"
    )
    return _resolve(schema, components), components


@pytest.mark.parametrize("kind", list(PAIRS), ids=lambda kind: kind.__name__)
def test_fields_and_types_match_the_contract(kind, contract):
    name, hidden = PAIRS[kind]
    declared, components = code_schema(kind)
    documented = _resolve(contract[name], contract)
    code_fields = set(declared["properties"]) - hidden
    assert code_fields == set(documented["properties"]), name
    for field in sorted(code_fields):
        ours = json_types(declared["properties"][field], components)
        theirs = json_types(documented["properties"][field], contract)
        if "any" in ours or "any" in theirs:
            continue
        assert ours == theirs, f"{name}.{field}: code {sorted(ours)}, contract {sorted(theirs)}"


@pytest.mark.parametrize("kind", BODIES, ids=lambda kind: kind.__name__)
def test_bodies_require_what_the_contract_requires_and_refuse_the_rest(kind, contract):
    name, _ = PAIRS[kind]
    declared, _ = code_schema(kind)
    documented = _resolve(contract[name], contract)
    assert set(declared.get("required", [])) == set(documented.get("required", [])), name
    assert documented.get("additionalProperties") is False, f"{name} must refuse other fields"
