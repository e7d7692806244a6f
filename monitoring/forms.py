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


class ChartFilterForm(forms.Form):
    """The filters of the control-chart, model-evolution and preference pages: a version,
    a project, a registered model (by name), an annotator, the window, and whether to
    apply all four Western Electric rules (else rule 1: beyond 3σ)."""

    version = forms.IntegerField(required=False, min_value=1, max_value=2**62)
    project = forms.IntegerField(required=False, min_value=1, max_value=2**62)
    model = forms.CharField(required=False, max_length=100)
    annotator = forms.IntegerField(required=False, min_value=1, max_value=2**62)
    metric = forms.ChoiceField(
        choices=[("agreement", "Agreement with consensus"), ("speed", "Time per vote")],
        required=False,
    )
    window = forms.ChoiceField(choices=Window.choices, required=False)
    we = forms.BooleanField(required=False, label="Western Electric rules")

    def clean(self):
        data = super().clean()
        data["window"] = data.get("window") or Window.DAY
        data["metric"] = data.get("metric") or "agreement"
        return data
