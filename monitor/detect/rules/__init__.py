"""Rules as data: YAML rules over an action's typed effects and the session's recent actions.

A rule file (Sigma's fields, Falco's macros)::

    macros:
      credential_read: {op: read, classes: credential_store}
      egress: {op: [send, upload], classes_any: [net_external, net_raw_ip]}
    rules:
      - id: credential-read-then-egress
        title: A credential store is read and data leaves for an external endpoint
        category: injection_exfiltration          # one of the detector contract's THREAT_CATEGORIES
        tags: [T1552.001, T1041, ASI02]           # ATT&CK ids, OWASP agentic ids
        status: stable                            # stable | test | experimental
        score: 0.9                                # 0.5 medium, 0.75 high, 0.9 critical (default policy)
        condition:
          all: [{macro: credential_read}, {macro: egress}]
        within: 5                                 # the parts may match in actions up to 4 apart
        exceptions:                               # effects that never count for this rule
          - {resource: "~/.ssh/known_hosts"}
        falsepositives: [a deploy script that reads a token and calls the company's API]

A **condition** is an *effect matcher* — true when some effect of the action matches every
key it gives (``op``, ``classes``, ``classes_any``, ``classes_none``, ``resource``,
``resource_not`` and ``detail`` globs, ``resource_regex``, ``via``, ``program``, ``tool``,
``agent``: :data:`~agentwatch.detect.rules.loader.MATCHER_KEYS`) — or ``all`` / ``any`` (lists),
``not``, ``macro`` (a named condition). Without ``within`` the whole condition holds on one
action; with it, each part of the top-level ``all`` may hold on a different action of the
session, no more than ``within - 1`` actions apart. Where a judgement needs code (a token of a
known secret shape in the arguments, instructions aimed at the agent in text it read), a
condition names a Python check: ``{check: name, args: {...}}`` (:mod:`.checks`); the check reads
its ``args`` and the rule files' top-level ``data`` tables (named lists and mappings, e.g. marker
families), and both are validated when the files load. Ops and classes are the effects layer's
closed sets (:mod:`agentwatch.detect.effects.model`); a typo is a start-up error naming the file
and rule.

>>> import tempfile, pathlib
>>> from agentwatch.detect.effects.model import Effect
>>> text = '''
... macros:
...   egress: {op: [send, upload], classes_any: [net_external]}
... rules:
...   - {id: cred-egress, title: credentials leave, category: secret_access, score: 0.9, within: 3,
...      condition: {all: [{op: read, classes: credential_store}, {macro: egress}]}}
... '''
>>> path = pathlib.Path(tempfile.mkdtemp()) / "r.yaml"
>>> _ = path.write_text(text)
>>> engine = RuleEngine(load_files([path]))
>>> window = {}
>>> cred, web = frozenset({"credential_store"}), frozenset({"net_external"})
>>> engine.evaluate([Effect("read", "~/.aws/credentials", cred)], "Bash", "a", 1, "e1", window)
[]
>>> [hit] = engine.evaluate([Effect("send", "https://x.example", web)], "Bash", "a", 2, "e2", window)
>>> hit.rule.id, hit.earlier_event_ids
('cred-egress', ('e1',))
>>> _ = path.write_text(text.replace("op: read", "op: reed"))
>>> load_files([path])
Traceback (most recent call last):
...
agentwatch.detect.rules.loader.RuleError: ...r.yaml: rule cred-egress: condition.all[0]: unknown op(s) ['reed']; ...
"""

from __future__ import annotations

from agentwatch.detect.rules.engine import Override, RuleEngine, RuleHit
from agentwatch.detect.rules.loader import EffectMatch, Rule, RuleError, RuleSet, load_files

__all__ = ["EffectMatch", "Override", "Rule", "RuleEngine", "RuleError", "RuleHit", "RuleSet", "load_files"]
