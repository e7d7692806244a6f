"""Forms of the governance pages: webhook subscriptions."""

from django import forms

from .webhooks import EVENT_TYPES


class WebhookSubscriptionForm(forms.Form):
    """Create or edit a webhook subscription (the service validates the URL's addresses)."""

    name = forms.CharField(max_length=100)
    url = forms.CharField(
        max_length=1000, label="URL", help_text="https:// (or http://) address that receives POSTs."
    )
    event_types = forms.MultipleChoiceField(
        choices=[(name, f"{name} — {text}") for name, text in EVENT_TYPES.items()],
        widget=forms.CheckboxSelectMultiple,
        label="Events",
    )
    project = forms.IntegerField(
        required=False, min_value=1, label="Project id", help_text="Empty: every project."
    )
    allow_private = forms.BooleanField(
        required=False,
        label="Allow private addresses",
        help_text="Lets the URL reach loopback or private-network addresses (admins only).",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args, can_allow_private: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_allow_private:
            del self.fields["allow_private"]

    def values(self) -> dict:
        """The service's keyword arguments."""
        data = dict(self.cleaned_data)
        data["project_id"] = data.pop("project")
        return data
