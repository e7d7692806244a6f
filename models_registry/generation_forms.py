"""Forms of the generation pages: providers, prompt sets (typed, imported, generated) and
generation jobs.  Validation of substance stays in the services; these only read input."""

from __future__ import annotations

from django import forms

from rlhf_platform.validation import text_validate

from .generation import K_MAX
from .generation_models import GenerationJob


class ProviderForm(forms.Form):
    """Add or change a provider; the key field is never filled in when shown again."""

    name = forms.CharField(max_length=100, validators=[text_validate])
    base_url = forms.CharField(
        max_length=500, label="Base URL", validators=[text_validate],
        help_text="The OpenAI-compatible root, e.g. https://api.openai.com/v1",
    )  # fmt: skip
    model_name = forms.CharField(max_length=200, label="Model", validators=[text_validate])
    api_key = forms.CharField(
        max_length=4096, required=False, label="API key", validators=[text_validate],
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted; shown masked afterwards. Leave empty to keep the stored key.",
    )  # fmt: skip
    requests_per_minute = forms.IntegerField(min_value=1, max_value=1_000_000, required=False)
    tokens_per_minute = forms.IntegerField(min_value=1, max_value=1_000_000_000, required=False)
    max_concurrency = forms.IntegerField(min_value=1, max_value=256, initial=16)
    timeout_seconds = forms.FloatField(
        min_value=0.1, max_value=600, initial=60, label="Timeout (s)"
    )


class PromptSetTypedForm(forms.Form):
    """Prompts typed one per line."""

    name = forms.CharField(max_length=200, validators=[text_validate])
    prompts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}), validators=[text_validate],
        help_text="One prompt per line.", max_length=2_000_000,
    )  # fmt: skip

    def prompt_list(self) -> list[str]:
        return [line for line in self.cleaned_data["prompts"].splitlines() if line.strip()]


class PromptSetImportForm(forms.Form):
    """A CSV (``prompt``, ``topic`` columns) or JSONL (``{"prompt", "topic"?}``) file."""

    name = forms.CharField(max_length=200, validators=[text_validate])
    file = forms.FileField(help_text="CSV with a 'prompt' column, or JSONL with a 'prompt' key.")


class PromptSetGenerateForm(forms.Form):
    """Topics and a template, sent to a provider: seeds, variations, near-duplicates out."""

    name = forms.CharField(max_length=200, validators=[text_validate])
    provider = forms.TypedChoiceField(coerce=int)
    topics = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), validators=[text_validate],
        help_text="One domain or topic per line.", max_length=20_000,
    )  # fmt: skip
    template = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, validators=[text_validate],
        help_text="With {topic} and {n}; empty for the default.", max_length=5000,
    )  # fmt: skip
    seeds_per_topic = forms.IntegerField(min_value=1, max_value=50, initial=5)
    variations_per_seed = forms.IntegerField(min_value=0, max_value=10, initial=2)
    dedupe_threshold = forms.FloatField(
        min_value=0.5, max_value=1.0, initial=0.9,
        help_text="TF-IDF cosine similarity at which a prompt counts as a near-duplicate.",
    )  # fmt: skip

    def __init__(self, *args, providers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(p.pk, p.name) for p in providers]

    def topic_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["topics"].splitlines() if line.strip()]

    def settings(self) -> dict:
        names = ("seeds_per_topic", "variations_per_seed", "dedupe_threshold")
        return {name: self.cleaned_data[name] for name in names}


class GenerationJobForm(forms.Form):
    """k responses per kept prompt of a set, with sampling settings and limits."""

    prompt_set = forms.TypedChoiceField(coerce=int, label="Prompt set")
    provider = forms.TypedChoiceField(coerce=int)
    k = forms.IntegerField(min_value=1, max_value=K_MAX, initial=2, label="Responses per prompt")
    temperature = forms.FloatField(min_value=0, max_value=2, initial=1.0)
    top_p = forms.FloatField(min_value=0, max_value=1, initial=1.0)
    max_tokens = forms.IntegerField(min_value=1, max_value=32768, initial=512)
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    concurrency = forms.IntegerField(min_value=1, max_value=256, initial=8)
    token_cap = forms.IntegerField(min_value=1, required=False, help_text="Tokens at most.")
    project = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Items into project"
    )
    pairing = forms.ChoiceField(choices=GenerationJob.Pairing.choices, initial="all")
    pairs = forms.CharField(
        required=False, max_length=1000, help_text="For chosen pairs: e.g. 0-1, 2-3"
    )

    def __init__(self, *args, prompt_sets=(), providers=(), projects=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["prompt_set"].choices = [(s.pk, s.name) for s in prompt_sets]
        self.fields["provider"].choices = [(p.pk, p.name) for p in providers]
        self.fields["project"].choices = [("", "— none —"), *[(p.pk, p.name) for p in projects]]

    def clean_pairs(self) -> list[list[int]]:
        pairs = []
        for chunk in self.cleaned_data["pairs"].replace(";", ",").split(","):
            if not chunk.strip():
                continue
            left, _, right = chunk.partition("-")
            if not (left.strip().isdigit() and right.strip().isdigit()):
                raise forms.ValidationError("write pairs as 0-1, 2-3")
            pairs.append([int(left), int(right)])
        return pairs

    def job_options(self) -> dict:
        data = self.cleaned_data
        pairing = data["pairing"] if data["project"] else "none"
        return {
            "k": data["k"], "concurrency": data["concurrency"], "token_cap": data["token_cap"],
            "sampling": {"temperature": data["temperature"], "top_p": data["top_p"],
                         "max_tokens": data["max_tokens"], "seed": data["seed"]},
            "project_id": data["project"], "pairing": pairing, "pairs": data["pairs"] or None,
        }  # fmt: skip
