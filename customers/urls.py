from django.urls import path

from . import views

app_name = "customers"
urlpatterns = [
    path("", views.customer_index, name="index"),
    path("imports/", views.import_index, name="imports"),
    path("imports/upload/", views.import_upload, name="import-upload"),
    path("imports/<int:job_id>/", views.import_detail, name="import-detail"),
    path("imports/<int:job_id>/map/", views.import_map, name="import-map"),
    path("imports/<int:job_id>/rejects.csv", views.import_rejects, name="import-rejects"),
]
