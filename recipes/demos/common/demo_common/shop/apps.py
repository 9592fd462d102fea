from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "demo_common.shop"
    label = "shop"
    default_auto_field = "django.db.models.BigAutoField"
