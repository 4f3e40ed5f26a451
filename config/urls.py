"""Top-level URL map: pages, the admin, the REST API under /api/v1/, and /healthz."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path

from core.health import healthz
from core.views import ApiDocsView, ApiSchemaView

api_v1 = [
    path("schema/", ApiSchemaView.as_view(), name="api-schema"),
    # The split view serves its start-up script from this URL (?script), so no inline script
    # is needed; Swagger UI's own style attributes need inline styles on this page only.
    path("docs/", csp_update({"style-src": [UNSAFE_INLINE]})(ApiDocsView.as_view(url_name="api-schema")), name="api-docs"),
    path("", include("consortium.api_urls")),
    path("", include("valuation.api_urls")),
    path("", include("ledger.api_urls")),
    path("", include("incentives.api_urls")),
    path("", include("incentives.document_urls")),
    path("", include("incentives.dispute_urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("", include("consortium.urls")),
    path("", include("valuation.urls")),
    path("", include("incentives.urls")),
    path("", include("ledger.urls")),
]

# Under /api/ these answer with the documented JSON error body; pages keep Django's templates.
handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
