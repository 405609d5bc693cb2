"""URLconf for the test suite."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("scout/", include("django_scout.urls")),
]
