"""One inbound message, routed: group chats, message kinds, commands, then the current step."""

from __future__ import annotations

from handlers import broadcasts, commands, directory_import, privacy, reg_buttons, registrations, review, sms_budget
from handlers.messages import Choice, Kind
from handlers.normalize import clean_text
from handlers.steps import (
    STEPS,
    SUGGESTION,
    State,
    ask,
    is_button_label,
    match_choice,
    step_choices,
    take_answer,
    take_attachment,
)
from handlers.turn import Turn
from handlers.validation import MAX_MESSAGE_LENGTH, MAX_PAYLOAD_LENGTH, MAX_RAW_LENGTH

_KIND_NAMES = {
    Kind.PHOTO: "kind_photo", Kind.FILE: "kind_file", Kind.STICKER: "kind_sticker",
    Kind.LOCATION: "kind_location", Kind.AUDIO: "kind_audio", Kind.VIDEO: "kind_video",
    Kind.CONTACT: "kind_contact",
}


async def handle(turn: Turn) -> None:
    inbound, conv = turn.inbound, turn.conv
    state = State(conv.state)

    if len(inbound.text) > MAX_RAW_LENGTH or len(inbound.payload) > MAX_PAYLOAD_LENGTH:
        _refuse_overlong(turn)
        return
    if inbound.kind in (Kind.TEXT, Kind.BUTTON):
        admin_action = broadcasts.parse(inbound.text, inbound.payload or None)
        if admin_action is not None:
            await broadcasts.handle(turn, *admin_action)
            return
        privacy_action = None if inbound.payload else privacy.parse(clean_text(inbound.text))
        if privacy_action is not None:  # an admin's /data_show, /data_erase
            await privacy.handle(turn, *privacy_action)
            return
        if not inbound.payload and (sms_argument := sms_budget.parse(inbound.text)) is not None:
            await sms_budget.handle(turn, sms_argument)
            return
        review_action = review.parse(clean_text(inbound.text), inbound.payload or None)
        if review_action is not None:
            await review.handle(turn, *review_action)
            return
    if inbound.group_id is not None:
        # Groups are for reviewers; an officer addressing the bot there is sent to a private chat.
        # Ordinary group chatter is not meant for the bot and gets no answer.
        if inbound.kind is Kind.BUTTON or inbound.text.startswith("/"):
            turn.say("group_private")
        return
    if inbound.kind is Kind.FOLLOW:  # first contact, or the officer coming back (console start, LINE re-add)
        if state is State.START:
            await commands.start(turn)
        else:
            turn.say("welcome_back")
            await ask(turn)
        return

    payload: str | None = None
    text = ""
    if inbound.kind is Kind.BUTTON:
        payload = inbound.payload
    elif inbound.kind is Kind.TEXT:
        text = clean_text(inbound.text)
        if len(text) > MAX_MESSAGE_LENGTH:
            turn.say("too_long", count=len(text), choices=_choices(turn))
            return
        if not text:
            turn.say("empty_answer", choices=_choices(turn))
            return
    elif inbound.kind in (Kind.PHOTO, Kind.FILE) and (
        await directory_import.take_file(turn) or await take_attachment(turn)  # an admin's directory, or a letter
    ):
        return
    elif inbound.kind is Kind.CONTACT and inbound.contact is not None and state is State.PHONE:
        if not inbound.contact.own:  # someone else's number from the address book: not for the OTP
            turn.say("err_contact_not_own", choices=_choices(turn))
            return
        await take_answer(turn, inbound.contact.phone, None)
        return
    else:
        await _not_text(turn)
        return

    if conv.confirm_cancel and await commands.answer_cancel(turn, text, payload):
        return
    if await privacy.answer(turn, text, payload):  # "really erase?" answered (button or typed word)
        return
    if command := commands.parse(text, payload):
        await commands.run(turn, *command)
        return
    if reg_buttons.is_payload(payload):  # acts on the registration it names, from any step
        await registrations.act(turn, payload)  # type: ignore[arg-type]
        return
    if payload is not None and payload.startswith(SUGGESTION):  # a suggested answer: as if typed
        text, payload = payload.removeprefix(SUGGESTION), None
    if state is State.START:
        await commands.start(turn)
        return

    choices = step_choices(turn, state)
    if payload is not None and payload not in {c.payload for c in choices}:
        turn.say("stale_button", choices=choices)
        return
    if payload is None:
        payload = match_choice(turn, text, choices)
    if payload is None and STEPS[state].free_text and is_button_label(text):
        # A button's name typed where a free answer goes: never stored as the answer. The
        # buttons of the officer's other registrations come along (a rejection notice's, say).
        _, others, _ = await registrations.overview(turn)
        turn.say("err_button_typed", label=text, choices=[*others, *choices])
        return
    await take_answer(turn, text, payload)


def _refuse_overlong(turn: Turn) -> None:
    """A text or button data longer than any platform lets a person send: refused on its length
    alone, before it is cleaned or parsed (that costs time in proportion to it), and nothing is
    taken from it. In a group only a message meant for the bot gets an answer."""
    inbound = turn.inbound
    if inbound.group_id is not None and inbound.kind is not Kind.BUTTON and not inbound.text.startswith("/"):
        return
    if len(inbound.payload) > MAX_PAYLOAD_LENGTH:
        turn.say("stale_button", choices=_choices(turn))
    else:
        turn.say("too_long", count=len(inbound.text), choices=_choices(turn))


async def _not_text(turn: Turn) -> None:
    """A photo, sticker, location… where a typed answer or a button is expected."""
    state = State(turn.conv.state)
    if state is State.START:
        await commands.start(turn)
    elif state is State.LETTER:
        turn.say("err_expect_photo", choices=_choices(turn))
    elif state is State.SUBMITTED:
        await ask(turn)
    else:
        got = turn.t(_KIND_NAMES.get(turn.inbound.kind, "kind_other"))
        turn.say("expect_text", got=got, choices=_choices(turn))


def _choices(turn: Turn) -> list[Choice]:
    state = State(turn.conv.state)
    return step_choices(turn, state) if state in STEPS else []
