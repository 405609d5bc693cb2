"""``scout/`` is the product (its live relay among its URLs), ``bare/`` the bare relay."""

from django.urls import include, path

from .views import bare_relay

urlpatterns = [
    path("scout/", include("django_scout.urls")),
    path("bare/interactions/<uuid:pk>/", bare_relay),
]
