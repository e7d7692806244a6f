"""The attunement dashboard's filters."""

from __future__ import annotations

from django import forms

from .models import Window


class DashboardFilterForm(forms.Form):
    """Which version (by id, or ``model`` + ``alias``) and which time bucket to show."""

    version = forms.IntegerField(required=False, min_value=1)
    model = forms.CharField(required=False, max_length=200)
    alias = forms.CharField(required=False, max_length=50)
    window = forms.ChoiceField(choices=Window.choices, required=False)

    def clean(self):
        data = super().clean()
        if data.get("alias") and not data.get("model"):
            self.add_error("model", "name the registered model whose alias to follow")
        data["window"] = data.get("window") or Window.DAY
        return data
