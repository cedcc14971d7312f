"""Forms of the learner page and the dashboard: shape and limits only, the services decide the rest."""

from __future__ import annotations

from django import forms

from core.validation import JSONRefused, json_loads
from curriculum.answers import MAX_RESPONSE_LENGTH
from tracing.estimators import ESTIMATORS


class AnswerForm(forms.Form):
    token = forms.CharField(widget=forms.HiddenInput, max_length=1000)
    response = forms.CharField(
        max_length=MAX_RESPONSE_LENGTH,
        strip=True,
        error_messages={"required": "Type an answer (or pick a choice) first."},
    )


class GoalForm(forms.Form):
    """The learner's goal: one skill of the course (empty: the whole course)."""

    goal = forms.ChoiceField(required=False)

    def __init__(self, *args, skills: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["goal"].choices = [("", "The whole course"), *skills]


def model_choices() -> list[tuple[str, str]]:
    return [(kind, kind) for kind in sorted(ESTIMATORS)]


class FitStartForm(forms.Form):
    model = forms.ChoiceField(choices=model_choices)
    params = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": '{"forgets": true}'}),
        help_text="Optional hyper-parameters as a JSON object.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("model", "bkt" if "bkt" in ESTIMATORS else "rate")

    def clean_params(self) -> dict:
        text = self.cleaned_data["params"].strip()
        if not text:
            return {}
        try:
            value = json_loads(text)
        except JSONRefused as error:
            raise forms.ValidationError(f"not accepted: {error}") from None
        except ValueError as error:
            raise forms.ValidationError(f"not valid JSON: {getattr(error, 'msg', error)}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("params must be a JSON object")
        return value
