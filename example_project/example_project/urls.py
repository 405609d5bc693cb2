"""URLs of the example project: the admin and django-scout's callback endpoint."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "django-scout example"
admin.site.site_title = "django-scout example"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("scout/", include("django_scout.urls")),
]
