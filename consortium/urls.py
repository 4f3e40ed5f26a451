"""Pages of the tenancy app, plus sign-in, sign-out and password change."""

from django.contrib.auth import views as auth_views
from django.urls import path

from consortium import views
from consortium.forms import SignInForm

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True, authentication_form=SignInForm),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("", views.dashboard, name="dashboard"),
    path("c/<slug:slug>/", views.consortium_page, name="consortium-page"),
    path("c/<slug:slug>/api-keys/", views.api_keys_page, name="api-keys-page"),
    path("c/<slug:slug>/api-keys/<uuid:key_id>/revoke", views.api_key_revoke_page, name="api-key-revoke-page"),
    path("c/<slug:slug>/audit/", views.audit_page, name="audit-page"),
]
