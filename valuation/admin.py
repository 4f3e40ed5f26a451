"""Read-only admin views of training runs and uploads: uploads are never edited."""

from django.contrib import admin

from valuation.models import GlobalWeights, ParticipantUpdate, Payload, TrainingRun, ValidationSet


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["name", "consortium", "model_family", "task", "metric", "created_at"]
    list_filter = ["consortium", "model_family"]


@admin.register(GlobalWeights)
class GlobalWeightsAdmin(ReadOnlyAdmin):
    list_display = ["training_run", "round", "payload", "created_at"]


@admin.register(ParticipantUpdate)
class ParticipantUpdateAdmin(ReadOnlyAdmin):
    list_display = ["training_run", "round", "participant", "num_examples", "payload", "created_at"]
    list_filter = ["training_run"]


@admin.register(ValidationSet)
class ValidationSetAdmin(ReadOnlyAdmin):
    list_display = ["training_run", "version", "is_active", "rows", "features", "created_at"]


@admin.register(Payload)
class PayloadAdmin(ReadOnlyAdmin):
    list_display = ["sha256", "size", "created_at", "verified_at"]
