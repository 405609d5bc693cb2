"""``scout/`` is the product's callback endpoint, ``bare/callback/`` the bare view."""

from django.urls import include, path

from .views import bare_callback

urlpatterns = [
    path("scout/", include("django_scout.urls")),
    path("bare/callback/", bare_callback),
]
