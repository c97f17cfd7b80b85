"""``draft_postmortem``: a Markdown draft for the humans who own the incident.

Written from ``playbooks/templates/postmortem.md.j2`` in a sandboxed Jinja2 environment
(see :mod:`agentwatch.respond.postmortem`), to ``<data_dir>/postmortems/<incident>/postmortem.md``
with a ``timeline.svg`` beside it, quoting the evidence bundle collected earlier.
"""

from __future__ import annotations

from pathlib import Path

from agentwatch.respond.action_spec import Action, ActionContext, ActionOutcome, ActionParams, data_path
from agentwatch.respond.postmortem import write_postmortem


class PostmortemParams(ActionParams):
    pass


class DraftPostmortem(Action):
    name = "draft_postmortem"
    params_type = PostmortemParams
    summary = "Draft the postmortem (summary, blast radius, timeline, TTD/TTC, open questions)."

    def execute(self, ctx: ActionContext, params: ActionParams) -> ActionOutcome:
        evidence = next(
            (
                Path(a.result["path"])
                for a in reversed(ctx.incident.actions)
                if a.action == "collect_evidence" and a.status == "done" and "path" in a.result
            ),
            None,
        )
        path = write_postmortem(ctx.incident, data_path(ctx, "postmortems"), evidence)
        return ActionOutcome(summary=f"postmortem draft at {path}", result={"path": str(path)})
