"""Site pages, mounted at the root; their names ("dashboard", "customer-page") are global:
templates across the apps link to them."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer-page"),
]
