"""The ONNX graph a user downloads: the served graph, made to stand on its own.

The graph the service runs takes its numbers already imputed and scaled
(:class:`~mlservice.serving.onnx_runtime.NumericPrep` does that in float64
before the cast to float32, so that tree thresholds see exactly what
scikit-learn sees). A downloaded graph must take the raw columns instead, so
this module puts the same steps in front of it, in ONNX and in double
precision: ``IsNaN``/``Where`` for the median, ``Sub`` the mean, ``Div`` the
scale, then ``Cast`` to float. Each is IEEE arithmetic in float64, as numpy
does it, so ONNX Runtime answers the downloaded graph exactly as the service
answers with the served one.

Its inputs are listed in the model's record (``engine.onnx_inputs``), and the
graph says how to feed it in its metadata (``metadata_props``) too:
``mlservice.inputs`` (each column's input name and type), ``mlservice.classes``
(what a class index means), ``mlservice.missing_text`` (the string standing
for a missing text value) and ``mlservice.outputs``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..store.bundles import ModelBundle, OnnxInput, Task
from ..store.model_store import ModelStore
from .onnx_runtime import MISSING_TEXT, NumericPrep

#: What the routes and the client call each output.
OUTPUTS = {
    Task.CLASSIFICATION: "label (int64 class index into mlservice.classes), probabilities",
    Task.REGRESSION: "variable (float32 predicted value)",
}


class NoGraph(Exception):
    """The model has no ONNX graph (it is served by scikit-learn)."""


def input_names(bundle: ModelBundle) -> list[OnnxInput]:
    """Each schema column with the graph input that takes it; :class:`NoGraph` if none."""
    if bundle.onnx is None:
        raise NoGraph(bundle.engine_reason)
    return bundle.onnx_inputs()


def portable_graph(bundle: ModelBundle) -> bytes:
    """The served ONNX graph with imputation and scaling of the raw numeric columns in front.

    :class:`NoGraph` if the model was not compiled.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if bundle.onnx is None:
        raise NoGraph(bundle.engine_reason)
    model = onnx.load_from_string(bundle.onnx)
    graph = model.graph
    columns = input_names(bundle)
    prep = NumericPrep(bundle.pipeline)
    by_column = {entry["column"]: entry["input"] for entry in columns}
    nodes: list[Any] = []
    for index, column in enumerate(prep.columns):
        name = by_column[column]
        prepared = f"{name}__mlservice_prepared"
        _rename_uses(graph, name, prepared)
        nodes.extend(_prep_nodes(helper, numpy_helper, graph, name, prepared, prep, index))
        for graph_input in graph.input:
            if graph_input.name == name:
                graph_input.type.tensor_type.elem_type = TensorProto.DOUBLE
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    _describe(helper, model, bundle, columns)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def _rename_uses(graph: Any, old: str, new: str) -> None:
    """Every node that reads ``old`` reads ``new`` instead."""
    for node in graph.node:
        for position, name in enumerate(node.input):
            if name == old:
                node.input[position] = new


def _prep_nodes(
    helper: Any,
    numpy_helper: Any,
    graph: Any,
    name: str,
    prepared: str,
    prep: NumericPrep,
    index: int,
) -> list[Any]:
    """The nodes turning raw double ``name`` into float ``prepared``, as NumericPrep does."""
    from onnx import TensorProto

    def constant(suffix: str, value: float) -> str:
        tensor = numpy_helper.from_array(np.array([value], dtype=np.float64), f"{name}__{suffix}")
        graph.initializer.append(tensor)
        return str(tensor.name)

    step = f"{name}__mlservice"
    nodes = [
        helper.make_node("IsNaN", [name], [f"{step}_isnan"]),
        helper.make_node(
            "Where",
            [f"{step}_isnan", constant("median", float(prep.medians[index])), name],
            [f"{step}_imputed"],
        ),
    ]
    current = f"{step}_imputed"
    if prep.means is not None:
        nodes.append(
            helper.make_node(
                "Sub", [current, constant("mean", float(prep.means[index]))], [f"{step}_centred"]
            )
        )
        current = f"{step}_centred"
    if prep.scales is not None:
        nodes.append(
            helper.make_node(
                "Div", [current, constant("scale", float(prep.scales[index]))], [f"{step}_scaled"]
            )
        )
        current = f"{step}_scaled"
    nodes.append(helper.make_node("Cast", [current], [prepared], to=TensorProto.FLOAT))
    return nodes


def _describe(helper: Any, model: Any, bundle: ModelBundle, columns: list[OnnxInput]) -> None:
    """Write how to feed the graph and read its outputs into its metadata."""
    metadata = {
        "mlservice.inputs": json.dumps(columns),
        "mlservice.task": bundle.task,
        "mlservice.target": bundle.target,
        "mlservice.estimator": bundle.estimator,
        "mlservice.missing_text": json.dumps(MISSING_TEXT),
        "mlservice.outputs": OUTPUTS[Task(bundle.task)],
    }
    if bundle.classes is not None:
        metadata["mlservice.classes"] = json.dumps(bundle.classes)
    helper.set_model_props(model, metadata)


def graph_file(models: ModelStore, model_id: str, version: int) -> Path:
    """The downloadable graph of ``model_id`` at ``version``, written from the stored
    bundle on its first download (each version has its own file, so a download never
    gets a graph of another version). :class:`NoGraph` if that version has none."""
    filename = f"model.v{version}.onnx"
    path = models.artifacts.path(models.KIND, model_id, filename)
    if not path.exists():
        graph = portable_graph(models.load_bundle(model_id))
        with models.artifacts.writing(models.KIND, model_id, filename) as (handle, _):
            handle.write(graph)
    return path
