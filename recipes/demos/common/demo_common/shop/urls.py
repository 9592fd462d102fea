from django.urls import path, re_path

from demo_common.shop import views

KEY = r"(?P<key>[A-Za-z0-9._:-]{1,200})"

urlpatterns = [
    path("jobs", views.create_job),
    re_path(rf"^effects/{KEY}$", views.effects),
    re_path(rf"^charges/{KEY}$", views.charges),
    path("ticks", views.ticks),
    path("healthz", views.healthz),
    path("readyz", views.readyz),
]
