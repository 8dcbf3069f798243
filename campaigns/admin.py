from django.contrib import admin

from .models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["subject", "from_email", "created_at"]
    search_fields = ["subject", "message_id"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
