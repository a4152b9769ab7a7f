"""`mlops local iam-report`: every (principal, action, resource) the twin saw, and least privilege measured.

Per role: the actions its Allow statements grant (patterns expanded with the engine's Service
Authorization Reference data) that no call of any of its sessions used. Pure: the ledger, the roles'
policies and the expansion are inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def granted_patterns(policies: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], list[str]]:
    """(action patterns of Allow statements, policies with NotAction that cannot be expanded to a list)."""
    patterns: list[str] = []
    not_action: list[str] = []
    for name, document in policies:
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement:
                not_action.append(name)
                continue
            actions = statement.get("Action", [])
            for action in actions if isinstance(actions, list) else [actions]:
                if action not in patterns:
                    patterns.append(str(action))
    return patterns, not_action


def build_report(
    ledger: dict[str, Any],
    roles: list[tuple[str, list[tuple[str, dict[str, Any]]]]],
    expand: Callable[[list[str]], dict[str, list[str]]],
) -> dict[str, Any]:
    records = ledger.get("records", [])
    used: dict[str, dict[str, str]] = {}  # role -> {action in lower case: action as called}
    for record in records:
        if record["outcome"] == "allowed" and record.get("role_arn"):
            used.setdefault(record["role_arn"], {})[record["action"].lower()] = record["action"]
    role_reports: list[dict[str, Any]] = []
    unused_total = 0
    for role_arn, policies in roles:
        patterns, not_action = granted_patterns(policies)
        expanded = expand(patterns) if patterns else {}
        granted = sorted({action for actions in expanded.values() for action in actions}, key=str.lower)
        role_used = used.get(role_arn, {})
        unused = [action for action in granted if action.lower() not in role_used]
        unused_total += len(unused)
        role_reports.append(
            {
                "role": role_arn,
                "granted_patterns": patterns,
                "granted_actions": len(granted),
                "used_actions": sorted(role_used.values()),
                "unused_actions": unused,
                "not_expanded": not_action,
            }
        )
    denied = [r for r in records if r["outcome"] != "allowed"]
    return {
        "mode": ledger.get("mode"),
        "engine": ledger.get("engine"),
        "data": ledger.get("data"),
        "calls": ledger.get("calls", 0),
        "decisions": records,
        "denied": denied,
        "roles": role_reports,
        "unused_granted_actions": unused_total,
    }


def summary_line(report: dict[str, Any]) -> str:
    """The one line `mlops demo` ends with."""
    calls, unused = report["calls"], report["unused_granted_actions"]
    denied = report["denied"]
    if report.get("mode") == "off":
        return f"{calls} AWS calls; IAM not checked (MLOPS_TWIN_IAM=off)"
    if not denied:
        return f"{calls} AWS calls, all allowed by the templates' policies; {unused} granted actions unused"
    verb = "denied" if report.get("mode") == "enforce" else "would be denied (report mode)"
    first = denied[0]
    return (
        f"{calls} AWS calls, {len(denied)} (principal, action, resource) {verb}, e.g. {first['action']} "
        f"by {first['principal']} on {first['resource']}; {unused} granted actions unused "
        "(details: mlops local iam-report)"
    )


def render_text(report: dict[str, Any]) -> str:
    lines = [
        f"IAM mode: {report['mode']}  engine: {report['engine']}  data: {report['data']}",
        summary_line(report),
        "",
        "decisions (principal | action | resource | outcome x count | allowed by / why denied):",
    ]
    for record in sorted(report["decisions"], key=lambda r: (r["outcome"] == "allowed", r["principal"], r["action"])):
        lines.append(
            f"  {record['principal']} | {record['action']} | {record['resource']} | "
            f"{record['outcome']} x{record['count']} | {record['detail']}"
        )
    lines += ["", "least privilege, per role (granted actions no call used):"]
    for role in report["roles"]:
        lines.append(
            f"  {role['role']}: {role['granted_actions']} granted, {len(role['used_actions'])} used, "
            f"{len(role['unused_actions'])} unused"
        )
        if role["not_expanded"]:
            lines.append(f"    NotAction statements (not expanded): {', '.join(role['not_expanded'])}")
        for action in role["unused_actions"][:200]:
            lines.append(f"    unused: {action}")
        if len(role["unused_actions"]) > 200:
            lines.append(f"    ... and {len(role['unused_actions']) - 200} more (see --out FILE for the JSON)")
    return "\n".join(lines) + "\n"
