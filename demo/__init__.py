"""The demo consortium end to end. It sits above every app and calls one demo function per
app (``consortium_demo_seed``, ``valuation_demo_seed``, ``ledger_demo_seed``,
``settlement_demo_seed``); no app imports it. See docs/demo.md."""
