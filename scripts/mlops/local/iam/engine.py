"""Authorise one twin request as AWS would, and remember every decision for `mlops local iam-report`.

For each call: decode it (operations.py), name its IAM action(s) and resource ARN(s) from the
engine's Service Authorization Reference data (resources.py), find the caller's policies and the
resource's policy (state.py), and let the engine evaluate them with the request's context keys
(only those the action supports count: the engine drops the rest, as AWS does).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.local.iam.operations import Call
from mlops.local.iam.resources import ActionInfo, Lookups, Need, iam_action, needs, resource_account
from mlops.local.iam.sidecar import IamEngineError
from mlops.local.iam.state import Principal

log = logging.getLogger("mlops.local.iam")

MODES = ("enforce", "report", "off")
DEFAULT_MODE = "enforce"  # the twin runs on the templates' roles: refuse what AWS would refuse


def mode_from_environment(environ: dict[str, str] | None = None) -> str:
    value = (environ if environ is not None else os.environ).get("MLOPS_TWIN_IAM", DEFAULT_MODE).strip().lower()
    if value not in MODES:
        raise IamEngineError(
            f"MLOPS_TWIN_IAM={value!r} is not a mode of the twin's IAM checks",
            hint=f"use one of {', '.join(MODES)} (enforce is the default; off is for benchmarks only)",
        )
    return value


@dataclass
class Verdict:
    """The engine's answer for one action on one resource."""

    allowed: bool
    principal: str
    action: str
    resource: str
    message: str  # AWS's wording for a denial, "" when allowed
    allowed_by: str = ""  # the policy and statement that allowed it
    missing: str = ""  # the grant that would allow it, and statements that nearly matched


@dataclass
class Record:
    principal: str
    principal_kind: str
    role_arn: str | None
    action: str
    resource: str
    outcome: str  # "allowed" | "denied" | "would-deny" (report mode)
    detail: str
    count: int = 1


@dataclass
class Ledger:
    """Every (principal, action, resource) the twin saw, with its outcome; thread-safe."""

    records: dict[tuple[str, str, str, str], Record] = field(default_factory=dict)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, principal: Principal, verdict: Verdict, outcome: str) -> None:
        detail = verdict.allowed_by if verdict.allowed else f"{verdict.message}. {verdict.missing}".strip()
        key = (verdict.principal, verdict.action, verdict.resource, outcome)
        with self.lock:
            known = self.records.get(key)
            if known is None:
                self.records[key] = Record(
                    verdict.principal,
                    principal.kind,
                    principal.role_arn,
                    verdict.action,
                    verdict.resource,
                    outcome,
                    detail,
                )
            else:
                known.count += 1

    def count_call(self) -> None:
        with self.lock:
            self.calls += 1

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {"calls": self.calls, "records": [vars(r) for r in self.records.values()]}


def _statement_name(entry: dict[str, Any]) -> str:
    statement = entry.get("statement") or {}
    sid = statement.get("Sid")
    label = f"statement {sid!r}" if sid else "statement " + json.dumps(statement, sort_keys=True)[:160]
    return f"{label} of {entry.get('policy') or 'the resource policy'}"


def _denial(result: dict[str, Any], principal: str, action: str, resource: str) -> str:
    head = f"User: {principal} is not authorized to perform: {action} on resource: {resource}"
    if result.get("decision") == "ExplicitlyDenied":
        for part, words in (
            ("identity", "an identity-based policy"),
            ("resource", "a resource-based policy"),
            ("permissionBoundary", "a permissions boundary"),
        ):
            if (result.get(part) or {}).get("result") == "ExplicitlyDenied":
                return f"{head} with an explicit deny in {words}"
        return f"{head} with an explicit deny"
    identity = (result.get("identity") or {}).get("result")
    resource_result = (result.get("resource") or {}).get("result")
    boundary = (result.get("permissionBoundary") or {}).get("result")
    if identity != "Allowed" and resource_result != "Allowed":
        return f"{head} because no identity-based policy allows the {action} action"
    if boundary not in (None, "Allowed", "NotApplicable"):
        return f"{head} because no permissions boundary allows the {action} action"
    if resource_result != "Allowed":
        return f"{head} because no resource-based policy allows the {action} action"
    return f"{head} because no identity-based policy allows the {action} action"


def _near_misses(result: dict[str, Any]) -> str:
    notes = []
    for part in ("identity", "resource"):
        for entry in (result.get(part) or {}).get("unmatched", []):
            if entry["statement"].get("Effect") != "Allow" or not entry.get("actionMatch"):
                continue
            if not entry.get("resourceMatch"):
                notes.append(f"{_statement_name(entry)} grants the action on other resources")
            elif entry.get("conditionMatch") not in ("Match", True):
                keys = sorted(key for values in entry["statement"].get("Condition", {}).values() for key in values)
                notes.append(f"{_statement_name(entry)} grants it only under Condition keys {keys}")
    ignored = result.get("ignoredContextKeys") or []
    if ignored:
        notes.append(f"context keys this action does not support (ignored, as in AWS): {sorted(ignored)}")
    return "; ".join(notes)


_KEY_NORMALISE = re.compile(r"[^a-z0-9]")


def request_context(call: Call, info: ActionInfo, principal: Principal) -> dict[str, str | list[str]]:
    """The condition keys this request carries: global ones, request tags, and service keys named by members."""
    context: dict[str, str | list[str]] = dict(principal.context)
    context["aws:RequestedRegion"] = call.region
    context["aws:SecureTransport"] = "true"  # boto3 speaks TLS to AWS; only the twin's loopback is plain HTTP
    context["aws:ViaAWSService"] = "false"
    tags = call.params.get("Tags")
    pairs: list[tuple[str, str]] = []
    if isinstance(tags, list):
        pairs = [(str(t.get("Key")), str(t.get("Value", ""))) for t in tags if isinstance(t, dict)]
    elif isinstance(tags, dict):
        pairs = [(str(k), str(v)) for k, v in tags.items()]
    for key, tag_value in pairs:
        context[f"aws:RequestTag/{key}"] = tag_value
    if pairs:
        context["aws:TagKeys"] = [k for k, _ in pairs]
    members = {_KEY_NORMALISE.sub("", name.lower()): value for name, value in call.params.items()}
    keys = set(info.condition_keys)
    for resource_type in info.resource_types:
        keys.update(resource_type.get("conditionKeys", []))
    for key in keys:
        prefix, _, name = key.partition(":")
        if prefix == "aws" or "$" in name or "/" in name:
            continue
        if name.lower().startswith("x-amz-") and name.lower() in call.headers:
            context[key] = call.headers[name.lower()]
            continue
        member: Any = members.get(_KEY_NORMALISE.sub("", name.lower()))
        if isinstance(member, bool):
            context[key] = "true" if member else "false"
        elif isinstance(member, str | int | float):
            context[key] = str(member)
        elif isinstance(member, list) and all(isinstance(v, str) for v in member):
            context[key] = list(member)
    if info.name.startswith("kms:"):
        context["kms:CallerAccount"] = principal.account
    return context


class Authorizer:
    """Authorises calls with the engine; `mode` is enforce (refuse), report (record only) or off."""

    def __init__(
        self,
        *,
        engine: Callable[[str, dict[str, Any]], dict[str, Any]],
        lookups: Lookups,
        resource_policy: Callable[[str, str, str], dict[str, Any] | None],
        mode: str = DEFAULT_MODE,
    ) -> None:
        self.engine = engine
        self.lookups = lookups
        self.resource_policy = resource_policy
        self.mode = mode
        self.ledger = Ledger()
        self._actions: dict[str, ActionInfo | None] = {}
        self._simulations: dict[str, dict[str, Any]] = {}

    def action_info(self, action: str) -> ActionInfo | None:
        if action not in self._actions:
            answer = self.engine("/action", {"action": action})
            self._actions[action] = (
                ActionInfo(answer["name"], answer["wildcardOnly"], answer["resourceTypes"], answer["conditionKeys"])
                if answer.get("exists")
                else None
            )
        return self._actions[action]

    def _simulate(self, simulation: dict[str, Any], claims: dict[str, str | list[str]]) -> dict[str, Any]:
        key = json.dumps([simulation, claims], sort_keys=True)
        cached = self._simulations.get(key)
        if cached is None:
            if claims:  # a web identity's token claims: the engine's core evaluates them (server.mjs `federated`)
                cached = self.engine("/federated", {"simulation": simulation, "claims": claims})
            else:
                cached = self.engine("/simulate", {"simulation": simulation})
            if cached.get("decision") == "Error":
                raise IamEngineError(f"the IAM engine could not evaluate the request: {cached.get('errors')}")
            self._simulations[key] = cached
        return cached

    def authorize(self, call: Call, principal: Principal) -> list[Verdict]:
        """Every verdict of this call (one per action and resource); empty when AWS checks nothing."""
        action = iam_action(call)
        if action is None:
            return []
        info = self.action_info(action)
        if info is None:
            return [
                Verdict(
                    False,
                    principal.arn,
                    action,
                    "*",
                    f"User: {principal.arn} is not authorized to perform: {action} on resource: * because the "
                    f"Service Authorization Reference data has no action {action} (operation {call.operation})",
                    missing="the twin maps this operation to no IAM action: see RENAMED in "
                    "scripts/mlops/local/iam/resources.py",
                )
            ]
        verdicts = []
        for need in needs(call, action, info, principal.account, self.lookups):
            verdicts.extend(self._verdicts(call, principal, need, info))
        return verdicts

    def _verdicts(self, call: Call, principal: Principal, need: Need, info: ActionInfo) -> list[Verdict]:
        if need.unresolved:
            message = (
                f"User: {principal.arn} is not authorized to perform: {need.action} on resource: (unknown) "
                f"because the twin cannot compute the resource ARN: {need.unresolved}"
            )
            return [Verdict(False, principal.arn, need.action, "(unknown)", message)]
        if principal.problem:
            message = (
                f"User: {principal.arn} is not authorized to perform: {need.action} on resource: "
                f"{need.resources[0]} because {principal.problem}"
            )
            return [Verdict(False, principal.arn, need.action, need.resources[0], message, missing=principal.problem)]
        if need.action != info.name:
            other = self.action_info(need.action)
            info = other if other is not None else info
        context = {**request_context(call, info, principal), **need.context}
        verdicts = []
        for resource in need.resources:
            simulation: dict[str, Any] = {
                "request": {
                    "principal": principal.arn,
                    "action": need.action,
                    "resource": {
                        "resource": resource,
                        "accountId": resource_account(resource, self.lookups, principal.account),
                    },
                    "contextVariables": context,
                },
                "identityPolicies": [{"name": name, "policy": policy} for name, policy in principal.policies],
            }
            if resource != "*":
                policy = self.resource_policy(need.action, resource, call.region)
                if policy:
                    simulation["resourcePolicy"] = policy
            if principal.boundary:
                simulation["permissionBoundaryPolicies"] = [{"name": "boundary", "policy": principal.boundary}]
            if principal.session_policy:
                simulation["sessionPolicy"] = principal.session_policy
            result = self._simulate(simulation, principal.claims)
            if result.get("decision") == "Allowed":
                allow = (result.get("identity") or {}).get("allow") or (result.get("resource") or {}).get("allow") or []
                by = _statement_name(allow[0]) if allow else "the engine"
                verdicts.append(Verdict(True, principal.arn, need.action, resource, "", allowed_by=by))
            else:
                message = _denial(result, principal.arn, need.action, resource)
                missing = f"needs Allow {need.action} on {resource}"
                near = _near_misses(result)
                verdicts.append(
                    Verdict(
                        False,
                        principal.arn,
                        need.action,
                        resource,
                        message,
                        missing=f"{missing}; {near}" if near else missing,
                    )
                )
        return verdicts

    def check(self, call: Call, principal: Principal) -> Verdict | None:
        """Record the call's verdicts; the first denial when the call must be refused (enforce mode)."""
        self.ledger.count_call()
        verdicts = self.authorize(call, principal)
        refused = None
        for verdict in verdicts:
            if verdict.allowed:
                self.ledger.add(principal, verdict, "allowed")
                continue
            outcome = "denied" if self.mode == "enforce" else "would-deny"
            self.ledger.add(principal, verdict, outcome)
            log.warning(
                "IAM %s: principal=%s action=%s resource=%s: %s; %s",
                outcome,
                verdict.principal,
                verdict.action,
                verdict.resource,
                verdict.message,
                verdict.missing,
            )
            if refused is None and self.mode == "enforce":
                refused = verdict
        return refused
