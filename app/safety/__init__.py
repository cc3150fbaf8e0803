"""Safety reports from people with early access, their triage, and the per-model policy
that holds a component's next stage when enough of them report a serious problem."""
