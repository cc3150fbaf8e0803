"""The access policy: the tier ladder, a schedule's effective tier at an instant, clearance,
and the one decision every route formats (:func:`app.policy.decision.decide`).

A leaf: it imports nothing of the web, the database or the clock (callers pass ``now``), so
it is tested exhaustively without either and every layer above may use it.
"""
