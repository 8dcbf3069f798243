"""The one error campaigns' services raise for a request they cannot carry out."""


class CampaignError(ValueError):
    """A request that cannot be carried out; the message says why."""
