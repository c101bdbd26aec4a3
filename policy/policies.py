"""The baseline rules as CrossGuard policies: a thin adapter over `policy.baseline`.

CrossGuard hands a policy its properties behind a proxy that raises on any value that is
unknown during preview, which would abort every check of a resource for one unknown field. The
adapter turns the proxy into plain dicts with ``None`` for unknown values first, so a rule still
judges every property it can see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from policy.baseline import RESOURCE_RULES, STACK_RULES, ResourceRule, StackResource, StackRule

PACK_NAME = "acs-call-recording-baseline"


def _item(container: Any, key: Any) -> Any:
    try:
        return plain(container[key])
    except UnknownValueError:
        return None


def plain(value: Any) -> Any:
    """A deep copy of ``value`` with proxies unwrapped, secrets revealed and unknowns as None."""
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {key: _item(value, key) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_item(value, index) for index in range(len(value))]
    return value


def _resource_policy(rule: ResourceRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        props = plain(args.props)
        if rule.applies(args.resource_type, props):
            for message in rule.check(props):
                report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def to_stack_resource(resource: PolicyResource) -> StackResource:
    return StackResource(
        type_=resource.resource_type,
        urn=resource.urn,
        props=plain(resource.props),
        dependencies=frozenset(d.urn for d in resource.dependencies),
        parent=resource.parent.urn if resource.parent is not None else None,
    )


def _stack_policy(rule: StackRule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [to_stack_resource(r) for r in args.resources]
        for violation in rule.check(resources):
            report_violation(violation.message, violation.urn)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def build_policies() -> list[Policy]:
    """Every baseline rule as a mandatory policy: a violation blocks preview and update."""
    return [
        *(_resource_policy(rule) for rule in RESOURCE_RULES),
        *(_stack_policy(rule) for rule in STACK_RULES),
    ]
