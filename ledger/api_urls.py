"""Read-only ledger API routes (entries, proofs, checkpoints, balances)."""

from django.urls import path

from ledger import api

urlpatterns = [
    path("consortia/<slug:slug>/ledger/entries/", api.EntryList.as_view(), name="ledger-entry-list"),
    path("consortia/<slug:slug>/ledger/entries/<int:seq>/", api.EntryDetail.as_view(), name="ledger-entry-detail"),
    path("consortia/<slug:slug>/ledger/balances/", api.BalanceList.as_view(), name="ledger-balances"),
    path("ledger/checkpoints/", api.CheckpointList.as_view(), name="ledger-checkpoint-list"),
    path("ledger/checkpoints/latest/", api.CheckpointLatest.as_view(), name="ledger-checkpoint-latest"),
    path("ledger/checkpoints/<int:tree_size>/", api.CheckpointDetail.as_view(), name="ledger-checkpoint-detail"),
    path("ledger/consistency/", api.Consistency.as_view(), name="ledger-consistency"),
    path("ledger/public-key/", api.PublicKey.as_view(), name="ledger-public-key"),
]
