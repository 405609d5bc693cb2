"""URLs of the example project: the admin, the ticket page and django-scout's URLs."""

from django.contrib import admin
from django.urls import include, path

from tickets.views import ticket_detail

admin.site.site_header = "django-scout example"
admin.site.site_title = "django-scout example"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("scout/", include("django_scout.urls")),
    path("tickets/<int:pk>/", ticket_detail, name="ticket-detail"),
]
