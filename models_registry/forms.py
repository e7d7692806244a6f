"""Forms of the models UI: the training form starts a job from a snapshot."""

from django import forms

from .models import BaseModel, Kind
from .models_loop import LoopSettings
from .services import TRAINING_SETTINGS


def _setting_field(name: str, field_class, **kwargs):
    """A training setting left empty for the job's default for its kind (one source of
    defaults and bounds: ``services.TRAINING_SETTINGS``)."""
    reward, dpo, _type, low, high = TRAINING_SETTINGS[name]
    return field_class(
        min_value=low, max_value=high, required=False,
        help_text=f"Empty: {reward:g} for a reward model, {dpo:g} for DPO.", **kwargs,
    )  # fmt: skip


class TrainingJobForm(forms.Form):
    """Start a reward-model or DPO job on a dataset snapshot."""

    kind = forms.ChoiceField(choices=Kind.choices, initial=Kind.REWARD)
    registered_model = forms.RegexField(
        regex=r"^[a-z0-9][a-z0-9._-]{0,99}$",
        label="Model name",
        help_text="New or existing (lower case, digits, . _ -). Versions are numbered under it.",
    )
    snapshot = forms.TypedChoiceField(coerce=int, label="Dataset snapshot")
    base_model = forms.ModelChoiceField(
        queryset=BaseModel.objects.all(), to_field_name="name", label="Base model"
    )
    epochs = _setting_field("epochs", forms.IntegerField)
    learning_rate = _setting_field("learning_rate", forms.FloatField)
    batch_size = _setting_field("batch_size", forms.IntegerField)
    max_length = _setting_field("max_length", forms.IntegerField, label="Max tokens")
    curriculum = forms.BooleanField(
        required=False, help_text="Easy → hard by consensus confidence (no shuffling)."
    )

    def __init__(self, *args, snapshots=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].choices = [
            (s.pk, f"#{s.pk} {s.project.name} · {s.row_count} rows · {s.sha256[:12]}")
            for s in snapshots
        ]

    def config(self) -> dict:
        """The training settings chosen in the form (those left empty take the defaults)."""
        names = ("epochs", "learning_rate", "batch_size", "max_length", "curriculum")
        return {
            name: self.cleaned_data[name] for name in names if self.cleaned_data[name] is not None
        }


class ModelCardForm(forms.Form):
    """The human-entered fields of a model card (Markdown), and a note for the revision.
    Length and text checks are the service's (``model_card_fields_validate``), so the form
    and the API refuse the same input for the same reason."""

    intended_use = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), required=False,
        help_text="What the model is for, and who should use it. Needed for promotion.",
    )  # fmt: skip
    out_of_scope_use = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Out-of-scope use"
    )
    limitations = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), required=False,
        help_text="Where it fails or was not tested. Needed for promotion.",
    )  # fmt: skip
    ethical_considerations = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False
    )
    training_data_notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Notes on the training data"
    )
    note = forms.CharField(
        required=False, label="What changed (kept with the revision)",
        widget=forms.TextInput(attrs={"maxlength": 500}),
    )  # fmt: skip

    # Django strips surrounding whitespace and would turn "\x00" into a form error of its
    # own; the service decides instead, so both entry points answer alike.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for form_field in self.fields.values():
            form_field.validators = []
            form_field.max_length = None


class LoopSettingsForm(forms.Form):
    """The loop page's settings form (the service validates again and audits)."""

    enabled = forms.BooleanField(required=False)
    registered_model = forms.CharField(required=False, max_length=100)
    alias = forms.CharField(max_length=50, initial="production")
    second_alias = forms.CharField(required=False, max_length=50)
    confidence_threshold = forms.FloatField(min_value=0.5, max_value=1.0, initial=0.8)
    human_feedback_ratio = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.1)
    uncertainty = forms.ChoiceField(choices=LoopSettings.Uncertainty.choices)
    schedule_minutes = forms.IntegerField(min_value=0, max_value=10080, initial=0)
    batch_size = forms.IntegerField(min_value=1, max_value=4096, initial=256)
    kill_switch = forms.BooleanField(required=False)
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=0)

    def __init__(self, *args, instance_settings: LoopSettings | None = None, **kwargs):
        if instance_settings is not None and not args:
            from .loop import SETTINGS_FIELDS

            initial = {name: getattr(instance_settings, name) for name in SETTINGS_FIELDS
                       if name != "registered_model"}  # fmt: skip
            model = instance_settings.registered_model
            initial["registered_model"] = model.name if model else ""
            kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
