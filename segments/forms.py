"""Page forms of segments whose fields depend on each other: which options a model kind takes."""

from __future__ import annotations

from typing import Any

from django import forms

from .frames import attribute_types

KIND_LABELS = {
    "kmeans": "clusters (k-means)",
    "rfm": "RFM tiers",
    "propensity": "churn propensity",
    "value": "predicted value",
}
# What each kind predicts when no attribute is named: (the noun, what the days mean).
HORIZONS = {"propensity": "churn", "value": "spend"}
MAX_HORIZON_DAYS = 3650


class ModelTrainForm(forms.Form):
    """One form per model kind on the Models page, each posting only what its kind takes.

    k-means and RFM take no target and no horizon (the service refuses them); propensity
    and value predict either over a horizon in days (churn, spend) or an attribute of the
    right type. Whatever else a request carries is ignored, never passed on.
    """

    kind = forms.ChoiceField(choices=list(KIND_LABELS.items()))
    name = forms.CharField(required=False, max_length=200, label="Name (optional)")
    predict = forms.ChoiceField(required=False, choices=[("horizon", "over the next days"), ("attribute", "an attribute")])
    days = forms.IntegerField(required=False, min_value=1, max_value=MAX_HORIZON_DAYS, label="days")
    target = forms.CharField(required=False, max_length=200, label="attribute")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        if kind not in HORIZONS:
            return data
        if data.get("predict") == "attribute":
            wanted = ("boolean",) if kind == "propensity" else ("integer", "number")
            target = (data.get("target") or "").strip()
            if not target:
                self.add_error("target", "Choose the attribute to predict.")
            elif attribute_types().get(target) not in wanted:
                self.add_error("target", f"{target} is not a {' or '.join(wanted)} attribute.")
        elif not data.get("days") and "days" not in self.errors:
            self.add_error("days", "Say how many days ahead to predict (1 to 3650).")
        return data

    def options(self) -> dict[str, Any]:
        """The task's keyword options: only those the chosen kind takes."""
        data = self.cleaned_data
        options: dict[str, Any] = {}
        if data.get("name"):
            options["name"] = data["name"].strip()
        if data["kind"] in HORIZONS:
            if data.get("predict") == "attribute":
                options["target"] = data["target"].strip()
            else:
                options["churn_days"] = data["days"]
        return options

    def describe(self) -> str:
        """The job's label: what is being trained, in words."""
        data = self.cleaned_data
        label = f"Train {KIND_LABELS[data['kind']]}"
        if data["kind"] in HORIZONS:
            if data.get("predict") == "attribute":
                label += f" of {data['target']}"
            else:
                label += f" over the next {data['days']} days"
        return label


def form_error_words(form: forms.Form) -> str:
    """A form's errors as sentences naming the field by its label."""
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields and form.fields[name].label else name
        parts.extend(f"{label}: {e}" if name != "__all__" else str(e) for e in errors)
    return " ".join(parts)


def attribute_choices() -> dict[str, list[str]]:
    """The attributes a propensity (yes/no) or value (numbers) model can predict."""
    types = attribute_types()
    return {
        "propensity": sorted(n for n, t in types.items() if t == "boolean"),
        "value": sorted(n for n, t in types.items() if t in ("integer", "number")),
    }
