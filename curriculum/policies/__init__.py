"""Next-item policies, one file a policy, found by name through a registry of dotted paths (as the
estimators are). Pure: no Django. ``base`` holds what every policy shares and the interface."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from curriculum.policies.base import Policy

POLICIES: dict[str, str] = {"frontier": "curriculum.policies.frontier.FrontierPolicy"}
"""kind -> dotted path of its class; a course picks one with ``"kind"`` in its policy settings."""


def get_policy(kind: str) -> Policy:
    """An instance of the policy ``kind``; KeyError names the known kinds."""
    if kind not in POLICIES:
        raise KeyError(f"unknown policy kind {kind!r}; known: {', '.join(sorted(POLICIES))}")
    module, _, name = POLICIES[kind].rpartition(".")
    policy: Policy = getattr(importlib.import_module(module), name)()
    return policy
