from django.contrib import admin

from .models import AttributeDefinition, Consent, Customer, Event, Order, Suppression


class SuppressionInline(admin.TabularInline):
    model = Suppression
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["external_id", "email", "name", "country", "signup_date"]
    search_fields = ["=external_id", "email", "name"]
    list_filter = ["country", "signup_date"]
    inlines = [SuppressionInline]
    show_full_result_count = False  # COUNT(*) over a million rows on every page is waste


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "amount", "currency", "ordered_at"]
    search_fields = ["=external_id", "=customer__external_id"]
    list_filter = ["currency", "ordered_at"]
    raw_id_fields = ["customer"]
    date_hierarchy = "ordered_at"
    show_full_result_count = False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["customer", "kind", "occurred_at"]
    search_fields = ["=customer__external_id"]
    list_filter = ["kind", "occurred_at"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["customer", "reason", "source", "created_at"]
    list_filter = ["reason", "source"]
    raw_id_fields = ["customer"]


admin.site.register(AttributeDefinition)
admin.site.register(Consent, raw_id_fields=["customer"])
