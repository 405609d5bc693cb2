"""URLconf for the test suite."""

from django.contrib import admin
from django.urls import include, path

from tests.testapp.views import live_widget_view, start_interaction_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("scout/", include("django_scout.urls")),
    path("testapp/start-interaction/", start_interaction_view, name="testapp-start-interaction"),
    path("testapp/live/<str:kind>/<uuid:pk>/", live_widget_view, name="testapp-live-widget"),
]
