"""What one outbox message becomes on LINE: text messages of at most 5,000 characters, quick
reply buttons on the last, and a document as an image (LINE shows no PDF) behind a signed link to
our own server, with a button to open the PDF for the letter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from linebot.v3.messaging import (
    ButtonsTemplate,
    CameraAction,
    CameraRollAction,
    ImageMessage,
    PostbackAction,
    QuickReply,
    QuickReplyItem,
    TemplateMessage,
    TextMessage,
    URIAction,
)

from bot.line_flex import flex_message
from bot.links import LetterLink, LetterLinks
from handlers.messages import Choice, Outbound, split_text

MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
TEXT_LIMIT = 5000
ROUTES = {"letter": "letters", "signed": "signed", "chart": "charts"}  # a document's kind → bot/web.py's route


def line_messages(reply: Outbound, public_url: str, links: LetterLinks, now: datetime) -> list[Any]:
    """The LINE messages of one outbox message: a card as a Flex Message (after its picture,
    if any), else texts with quick replies, and a document as an image behind a signed link."""
    quick = quick_reply(reply.choices)
    document = reply.document
    texts = split_text(reply.text, TEXT_LIMIT)
    plain = [TextMessage(text=t) for t in texts[:-1]]
    flex = flex_message(reply, quick_reply) if reply.card is not None else None
    if document is None or document.link is None:
        if flex is not None:
            return [flex]
        return [*plain, TextMessage(text=texts[-1], quick_reply=quick)]
    kind = document.link[0]
    base = f"{public_url}/{ROUTES[kind]}/{links.token(LetterLink(*document.link), now)}"
    suffix = "png" if kind == "chart" else "jpg"
    image = ImageMessage(original_content_url=f"{base}/page.{suffix}", preview_image_url=f"{base}/preview.{suffix}")
    if flex is not None:  # a review card: the signed letter, then the card with its buttons
        return [image, flex]
    if kind in ("signed", "chart"):  # a picture to look at: the picture, then the text with its buttons
        return [image, *plain, TextMessage(text=texts[-1], quick_reply=quick)]
    return [
        image, *plain,
        TemplateMessage(
            alt_text=texts[-1][:400],
            template=ButtonsTemplate(text=texts[-1][:160], actions=[
                URIAction(label=label(document.link_label or "PDF"), uri=base),
            ]),
            quick_reply=quick,
        ),
    ]


def label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def quick_reply(choices: tuple[Choice, ...]) -> QuickReply | None:
    items = []
    for choice in choices:
        if choice.action == "reply":
            action: Any = PostbackAction(label=label(choice.label), data=choice.payload, display_text=choice.label)
        elif choice.action == "camera":
            action = CameraAction(label=label(choice.label))
        elif choice.action == "camera_roll":
            action = CameraRollAction(label=label(choice.label))
        else:  # share_phone: LINE has none
            continue
        items.append(QuickReplyItem(action=action))
    return QuickReply(items=items[:MAX_QUICK_REPLIES]) if items else None
