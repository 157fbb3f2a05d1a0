"""A card (the summary, a review card) as a LINE Flex Message: a bubble with a header, one row a
field with its value and, beside a field that can be changed, an edit button, then the
closing lines and the buttons, as Thai government LINE accounts show a form to check.

The message's plain text is the Flex Message's `altText` (what notifications and chat lists
show, and what older LINE apps show instead): LINE takes at most 400 characters there. The
bubble is built as JSON and read back through line-bot-sdk's models, which check it the way
LINE does (an unknown layout or a missing field is refused here, not by LINE).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from linebot.v3.messaging import FlexContainer, FlexMessage, QuickReply

from handlers.messages import Card, Choice, Outbound

ALT_TEXT_LIMIT = 400  # LINE's limit for a Flex Message's altText
BUBBLE_LIMIT = 30_000  # bytes of JSON LINE takes in one bubble
BUTTON_LABEL_LIMIT = 40  # LINE's limit for a Flex button's label
HEADER_COLOUR = "#0B6E4F"
LABEL_COLOUR = "#6B7280"


def alt_text(text: str) -> str:
    """The plain text, cut to LINE's 400 characters (at a line end when one is near)."""
    if len(text) <= ALT_TEXT_LIMIT:
        return text
    cut = text.rfind("\n", ALT_TEXT_LIMIT // 2, ALT_TEXT_LIMIT)
    return text[: cut if cut > 0 else ALT_TEXT_LIMIT - 1].rstrip() + "…"


def flex_message(reply: Outbound, quick: Callable[[tuple[Choice, ...]], QuickReply | None]) -> FlexMessage | None:
    """`reply`, which has a card, as a Flex Message: its buttons in the bubble, and those a
    bubble cannot hold (the camera, for one) as quick replies made by `quick`. None when the
    card is too big for one bubble (a very long history): the plain text goes instead."""
    card = reply.card
    assert card is not None
    in_bubble = {f.edit for f in card.fields if f.edit}
    labels = {c.payload: c.label for c in reply.choices}
    footer = [c for c in reply.choices if c.action == "reply" and c.payload not in in_bubble]
    rest = tuple(c for c in reply.choices if c.action != "reply")
    bubble = bubble_json(card, labels, footer)
    if len(json.dumps(bubble, ensure_ascii=False).encode()) > BUBBLE_LIMIT:
        return None
    return FlexMessage(alt_text=alt_text(reply.text), contents=FlexContainer.from_dict(bubble), quick_reply=quick(rest))


def bubble_json(card: Card, labels: dict[str, str], footer: list[Choice]) -> dict[str, Any]:
    """The bubble as LINE's JSON. `labels`: payload → the full label of the button it comes from
    (shown in the chat as what the officer pressed); `footer`: the buttons under the card."""
    rows: list[dict[str, Any]] = []
    for field in card.fields:
        value_box: dict[str, Any] = {
            "type": "box", "layout": "vertical", "flex": 1, "contents": [
                _text(field.label, size="xs", color=LABEL_COLOUR),
                _text(field.value or "-", size="sm", weight="bold"),
            ],
        }
        contents = [value_box]
        if field.edit and field.edit in labels:
            contents.append({
                "type": "button", "style": "link", "height": "sm", "flex": 0, "gravity": "center",
                "action": {"type": "postback", "label": _label(card.edit_label or labels[field.edit]),
                           "data": field.edit, "displayText": labels[field.edit]},
            })
        rows.append({"type": "box", "layout": "horizontal", "spacing": "sm", "contents": contents})
    body: list[dict[str, Any]] = [{"type": "box", "layout": "vertical", "spacing": "md", "contents": rows}]
    if card.note:
        body += [{"type": "separator", "margin": "lg"}, _text(card.note, size="xs", color=LABEL_COLOUR, margin="lg")]
    bubble: dict[str, Any] = {
        "type": "bubble", "size": "mega",
        "header": {"type": "box", "layout": "vertical", "backgroundColor": HEADER_COLOUR, "paddingAll": "lg",
                   "contents": [_text(card.title, size="md", weight="bold", color="#FFFFFF")]},
        "body": {"type": "box", "layout": "vertical", "contents": body},
    }
    if footer:
        bubble["footer"] = {"type": "box", "layout": "vertical", "spacing": "sm", "contents": [
            {"type": "button", "style": "primary" if index == 0 else "secondary", "height": "sm",
             "color": HEADER_COLOUR if index == 0 else None,
             "action": {"type": "postback", "label": _label(choice.label), "data": choice.payload,
                        "displayText": choice.label}}
            for index, choice in enumerate(footer)
        ]}
        for button in bubble["footer"]["contents"]:
            if button["color"] is None:
                del button["color"]
    return bubble


def _text(text: str, **style: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "wrap": True, **style}


def _label(text: str) -> str:
    return text if len(text) <= BUTTON_LABEL_LIMIT else text[: BUTTON_LABEL_LIMIT - 1] + "…"
