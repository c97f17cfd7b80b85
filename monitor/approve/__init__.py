"""Approve: humans decide gated containment (request, vote, execute, expire).

Life of an approval (one row in ``approvals``; votes in ``approval_votes``)::

    pending ──quorum of approves──▶ approved ──executor claims──▶ running ──▶ executed | failed
       │ └──one deny─────────────▶ denied
       ├──timeout, on_timeout=escalate, levels left──▶ pending (next level mentioned and allowed)
       ├──final timeout──────────▶ expired          (never executes)
       └──incident resolved──────▶ cancelled

Modules, in that order:

* ``request`` — the ``request_approval`` step's parameters and the pending row it records;
* ``directory`` — approver ids, identity lookups (fail closed), the approvals file for the CLI;
* ``votes`` — the rules of a vote (approvers, separation of duties, one vote each, quorum);
* ``views`` — approvals as read back, for the CLI and for notifiers;
* ``executor`` — runs an approved gated action once per claim
  (the contract gated actions implement: :mod:`agentwatch.respond.gated_action_spec`);
* ``sweeper`` — escalates, expires and cancels what nobody decided in time;
* ``runtime`` — one round of all of it, and the :class:`~agentwatch.approve.runtime.Outbox`
  interface through which approvers are told;
* ``worker`` — the threads that run rounds, and the wiring of an outbox;
* ``slack`` — one way to reach approvers (Block Kit messages, the Web API, button clicks,
  the Slack outbox). Nothing above ``worker`` imports it.
"""
