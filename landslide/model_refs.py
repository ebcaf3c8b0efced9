"""Which training run a user means by a model reference.

``map.py model=...`` and ``select_model.py models=[...]`` take the same references, resolved
here to a complete training run of the MLflow store:

- ``models:/<name>@<alias>`` and ``models:/<name>/<version>`` (``latest`` for the newest
  version): a registered model version, resolved to the run it was registered from;
- ``models:/<model id>`` (``m-...``): an MLflow 3 logged model, resolved to its source run;
- ``runs:/<run id>``, optionally with an artifact path (``runs:/<run id>/model``), which only
  names the run: the model is always the run's own checkpoint and config;
- a run id (32 hex characters) or a run name (the newest complete run of that name in the
  given experiments).

Only complete runs (:func:`landslide.lifecycle.is_complete`) are accepted.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import mlflow
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from landslide.errors import UserError
from landslide.lifecycle import is_complete

log = logging.getLogger(__name__)

MODELS = "models:/"
RUNS = "runs:/"

#: An MLflow run id.
RUN_ID = re.compile(r"[0-9a-f]{32}")

#: How the reference forms are spelt in messages.
FORMS = "a run name, a run id, runs:/<run id> or models:/<name>@<alias>"


class ModelRefError(UserError):
    """A model reference that names no complete run: one line naming it and the fix."""


@dataclass(frozen=True)
class ResolvedRun:
    """A complete training run and how the reference reached it.

    Attributes:
        run: the training run.
        description: e.g. ``registered model palu version 3 (alias champion), run
            resu_senet-ib700-seed42 (<id>)``.
    """

    run: Run
    description: str


def is_uri(ref: str) -> bool:
    """Whether ``ref`` is a ``models:/`` or ``runs:/`` URI."""
    return ref.startswith((MODELS, RUNS))


def resolve_run(
    client: mlflow.MlflowClient,
    ref: str,
    experiments: Sequence[str],
    key: str = "model",
    alternatives: str = "",
) -> ResolvedRun:
    """The complete training run that ``ref`` names.

    Args:
        client: the tracking client (its store also holds the registry).
        ref: a reference in one of the module's forms.
        experiments: where a run name is looked for.
        key: the setting ``ref`` came from, for messages (``model`` gives ``model=<ref>``).
        alternatives: other forms the caller accepts, appended to the list in messages
            (e.g. ``", a checkpoint path or auto"``).

    Raises:
        ModelRefError: if nothing matches, or the run is not complete.
    """
    where = f"{key}={ref}"
    if ref.startswith(MODELS):
        resolved = _registered(client, ref[len(MODELS) :], where)
    elif ref.startswith(RUNS):
        run_id = ref[len(RUNS) :].split("/", 1)[0]
        run = _get_run(client, run_id)
        if run is None:
            raise ModelRefError(
                f"{where}: no run {run_id or '(empty id)'} in {client.tracking_uri}; give the "
                f"id of a run in this store (runs:/<32 hex characters>)"
            )
        resolved = ResolvedRun(run, f"MLflow run {run.info.run_name} ({run.info.run_id})")
    else:
        run = _get_run(client, ref) if RUN_ID.fullmatch(ref) else None
        if run is None:
            run = _run_by_name(client, ref, experiments, where, alternatives)
        resolved = ResolvedRun(run, f"MLflow run {run.info.run_name} ({run.info.run_id})")
    _check_complete(resolved.run, where, ref.startswith(MODELS))
    return resolved


def resolve_runs(
    client: mlflow.MlflowClient, refs: Sequence[str], experiments: Sequence[str], key: str
) -> list[Run]:
    """The complete runs ``refs`` name, each once, in the order given.

    Raises:
        ModelRefError: for the first reference that names no complete run.
    """
    runs: dict[str, Run] = {}
    for ref in refs:
        resolved = resolve_run(client, str(ref), experiments, key)
        log.info("%s=%s: %s", key, ref, resolved.description)
        runs.setdefault(resolved.run.info.run_id, resolved.run)
    return list(runs.values())


def _registered(client: mlflow.MlflowClient, rest: str, where: str) -> ResolvedRun:
    """A ``models:/`` URI (without its scheme) to its version's or logged model's run."""
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        version = _version_by_alias(client, name, alias, where)
        label = f"registered model {name} version {version.version} (alias {alias})"
    elif "/" in rest:
        name, number = rest.rsplit("/", 1)
        version = _version(client, name, number, where)
        label = f"registered model {name} version {version.version}"
    elif rest.startswith("m-"):
        return _logged_model_run(client, rest, where)
    else:
        raise ModelRefError(
            f"{where}: give models:/<name>@<alias>, models:/<name>/<version> or "
            "models:/<logged model id> (m-...)"
        )
    if not version.run_id:
        raise ModelRefError(
            f"{where}: {label} was not registered from a run, so its checkpoint and "
            "training config are unknown; register a version of a train.py run"
        )
    run = _get_run(client, version.run_id)
    if run is None:
        raise ModelRefError(
            f"{where}: {label} comes from run {version.run_id}, which is not in "
            f"{client.tracking_uri}; point tracking_uri at the store it was trained in"
        )
    return ResolvedRun(run, f"{label}, run {run.info.run_name} ({run.info.run_id})")


def _version_by_alias(
    client: mlflow.MlflowClient, name: str, alias: str, where: str
) -> ModelVersion:
    registered = _registered_model(client, name, where)
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        aliases = ", ".join(f"@{a} (version {v})" for a, v in sorted(registered.aliases.items()))
        raise ModelRefError(
            f"{where}: registered model {name} has no alias {alias}; its aliases: "
            f"{aliases or 'none'} (or give models:/{name}/<version>)"
        ) from None


def _version(client: mlflow.MlflowClient, name: str, number: str, where: str) -> ModelVersion:
    _registered_model(client, name, where)
    versions = client.search_model_versions(f"name = '{_quote(name)}'", max_results=10_000)
    known = sorted(int(v.version) for v in versions)
    if number == "latest" and known:
        number = str(known[-1])
    found = [v for v in versions if str(v.version) == number]
    if not found:
        listed = ", ".join(map(str, known)) or "none"
        raise ModelRefError(
            f"{where}: registered model {name} has no version {number}; its versions: {listed}"
        )
    return found[0]


def _registered_model(client: mlflow.MlflowClient, name: str, where: str) -> RegisteredModel:
    try:
        return client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models(max_results=100))
        raise ModelRefError(
            f"{where}: no registered model {name} in {client.tracking_uri}; registered: "
            f"{', '.join(names) or 'none'} (register one with train.py logger.register_as=<name>)"
        ) from None


def _logged_model_run(client: mlflow.MlflowClient, model_id: str, where: str) -> ResolvedRun:
    try:
        model = client.get_logged_model(model_id)
    except MlflowException:
        raise ModelRefError(
            f"{where}: no logged model {model_id} in {client.tracking_uri}; give the id shown "
            "in the training run's Logged models (m-...)"
        ) from None
    run = _get_run(client, model.source_run_id) if model.source_run_id else None
    if run is None:
        raise ModelRefError(
            f"{where}: logged model {model_id} has no source run in {client.tracking_uri}; "
            f"give {FORMS}"
        )
    description = f"logged model {model_id}, run {run.info.run_name} ({run.info.run_id})"
    return ResolvedRun(run, description)


def _check_complete(run: Run, where: str, registered: bool) -> None:
    if run.info.lifecycle_stage == "deleted":
        problem = "was deleted"
    elif not is_complete(run):
        problem = f"is not complete (status {run.info.status})"
    else:
        return
    fix = (
        "point the alias at a version of a complete run (MlflowClient.set_registered_model_alias)"
        if registered
        else "choose a run that finished training"
    )
    raise ModelRefError(f"{where}: run {run.info.run_name} ({run.info.run_id}) {problem}; {fix}")


def _get_run(client: mlflow.MlflowClient, run_id: str) -> Run | None:
    try:
        return client.get_run(run_id)
    except MlflowException:
        return None


def _run_by_name(
    client: mlflow.MlflowClient,
    name: str,
    experiments: Sequence[str],
    where: str,
    alternatives: str,
) -> Run:
    ids = []
    for experiment in experiments:
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            ids.append(found.experiment_id)
    if not ids:
        raise ModelRefError(
            f"{where}: no MLflow experiment {list(experiments)} in {client.tracking_uri}; "
            f"train a model first, or give {FORMS}{alternatives}"
        )
    candidates = client.search_runs(
        ids,
        f"attributes.run_name = '{_quote(name)}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    runs = [run for run in candidates if is_complete(run)]
    if not runs:
        raise ModelRefError(
            f"{where}: no complete run of that name in {list(experiments)} at "
            f"{client.tracking_uri}; give {FORMS}{alternatives}"
        )
    if len(runs) > 1:
        log.warning(
            "%s: %d complete runs have this name; using the newest, %s",
            where,
            len(runs),
            runs[0].info.run_id,
        )
    return runs[0]


def _quote(value: str) -> str:
    """``value`` inside single quotes of an MLflow filter."""
    return value.replace("'", "\\'")
