"""An outgoing message as the sender builds them, for every provider's tests."""

from campaigns.providers.base import OutgoingMessage


def message(to="a@example.com", key="k1"):
    return OutgoingMessage(
        key=key, to=to, from_email="offers@example.com", subject="Hi", text="t", html="<p>h</p>",
        headers={"List-Unsubscribe": "<https://x/u/t/>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        metadata={"offerlab_id": key, "offerlab_batch": "b1"}, tag="campaign-1",
    )
