"""``collect_evidence``: a tamper-evident bundle of what the session did and what we did.

Writes ``<data_dir>/evidence/<incident>/`` (see :mod:`agentwatch.respond.evidence`) and keeps the
bundle's manifest digest in the step's result, in the store — outside the bundle, where
rewriting the bundle cannot reach it.
"""

from __future__ import annotations

from agentwatch.respond.action_spec import Action, ActionContext, ActionOutcome, ActionParams, data_path
from agentwatch.respond.evidence import write_bundle


class EvidenceParams(ActionParams):
    pass


class CollectEvidence(Action):
    name = "collect_evidence"
    params_type = EvidenceParams
    summary = "Bundle the session's events, alerts and actions with a SHA-256 manifest."

    def execute(self, ctx: ActionContext, params: ActionParams) -> ActionOutcome:
        result = write_bundle(ctx.incident, data_path(ctx, "evidence"))
        return ActionOutcome(
            summary=f"evidence bundle {'written' if result.created else 'unchanged'} at {result.path} "
            f"(manifest sha256 {result.digest[:16]}…)",
            result={"path": str(result.path), "digest": result.digest, "version": result.version},
        )
