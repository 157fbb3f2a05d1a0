"""Property-based tests (hypothesis): over the validators, any text either validates to a value
that validates again to itself, or is refused with a reason the templates can say in Thai and
English; over the conversation, any sequence of inputs (typed text, the buttons of any step,
commands, the one-time code, messages that are not text) leaves a valid registration.

Bounded and derandomized (the same examples every run, no example database), so CI stays
fast and its result does not depend on earlier runs."""

from __future__ import annotations

from itertools import count

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import validation as v
from handlers.messages import Kind
from handlers.normalize import clean_text
from handlers.states import EDITABLE
from handlers.validation import Invalid
from templates import LANGUAGES, has, text
from tests.helpers import ANSWERS, Officer, delivery_of
from tests.hostile_corpus import PAYLOADS, TEXTS
from tests.validity import INTERNAL_ERROR, leaks, problems

BOUNDED = settings(max_examples=150, deadline=None, derandomize=True, database=None)

# Text as typed, and as pasted: Thai, digits in every script, separators, invisible characters.
_ALPHABET = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from("กขคงจสมศรีใจดีนายนางสาว่้๊๋ิีึืุูเแโใไะาำ0123456789๐๑๒๓๔๕๖๗๘๙ -.+()/'"),
    st.sampled_from("\u200b\u200d\u202e\u0301\ufeff\u00a0\t\n\x00"),
)
TYPED = st.one_of(
    st.text(_ALPHABET, max_size=40),
    st.sampled_from([*ANSWERS.values(), *[x for x in TEXTS if len(x) <= 200]]),
    st.from_regex(r"(นาย|นาง|นางสาว|Mr\.?|ดร\.) ?[ก-ฮเ-ไ][ก-๎]{0,8} [ก-ฮA-Za-z][ก-๎a-z]{0,8}", fullmatch=True),
    st.from_regex(r"\+?(66|0)[689]\d{8}", fullmatch=True),
    st.from_regex(r"[1-8]\d{12}", fullmatch=True),
    # a letter and its mark kept apart by an invisible character, as copy-paste leaves them
    st.from_regex(r"[a-eก-ฮ][\u200b\u200d\u00ad\ufeff][\u0301\u0308\u0e48]{1,2}[a-z0-9]{2,6}", fullmatch=True),
)
# Letters, their marks and the invisible characters that can sit between them.
JOINABLE = st.text(st.sampled_from("ae\u0301\u0308\u200b\u200d\u00ad\ufeff\x07 ก\u0e34\u0e48"), max_size=8)
VALIDATORS = {
    "national_id": v.national_id,
    "thai_mobile": v.thai_mobile,
    "tsl_username": v.tsl_username,
    "kiddiary_username": v.kiddiary_username,
    "school_code_obec": lambda s: v.school_code(s, "obec"),
    "school_code_lao": lambda s: v.school_code(s, "lao"),
    "school_name": v.school_name,
    "province": v.province,
}


def said_in_every_language(invalid: Invalid) -> None:
    key = f"err_{invalid.reason}"
    assert has(key), f"no template {key}"
    for lang in LANGUAGES:
        sentence = text(key, lang, **invalid.params)  # every placeholder filled
        assert sentence and not leaks(sentence)


@BOUNDED
@given(st.sampled_from(sorted(VALIDATORS)), st.one_of(TYPED, JOINABLE))
def test_a_validator_gives_a_value_that_validates_again_or_a_reason_it_can_say(name, typed):
    validate = VALIDATORS[name]
    value = validate(typed)
    if isinstance(value, Invalid):
        said_in_every_language(value)
    else:
        assert validate(value) == value, (typed, value)
        assert value == clean_text(value) or name == "national_id"  # stored clean


@BOUNDED
@given(st.one_of(JOINABLE, TYPED))
def test_cleaning_twice_is_cleaning_once(typed):
    """What is stored is clean: a validator cleans its answer, and cleaning must not leave
    anything a second cleaning would change (a letter and its mark NFC would join)."""
    assert clean_text(clean_text(typed)) == clean_text(typed)


@BOUNDED
@given(TYPED)
def test_an_officer_name_validates_again_to_itself(typed):
    name = v.officer_name(typed)
    if isinstance(name, Invalid):
        said_in_every_language(name)
        return
    assert v.officer_name(f"{name.title} {name.first_name} {name.last_name}") == name
    assert v.officer_name(str(name)).last_name == name.last_name  # as the letter writes it


# --- the conversation ------------------------------------------------------------------

_OTHER_KINDS = [Kind.STICKER, Kind.LOCATION, Kind.AUDIO, Kind.VIDEO, Kind.PHOTO, Kind.FILE, Kind.CONTACT, Kind.OTHER,
                Kind.FOLLOW]
# Every button the bot makes, at any step, and some it never made.
BUTTONS = sorted({
    "consent:accept", "consent:decline", "aff:obec", "aff:lao", "none", "keep", "confirm", "otp:resend", "otp:change",
    "letter:again", "letter:edit", "share:phone", "camera", "camera_roll", "cancel:yes", "cancel:no",
    *[f"cmd:{c}" for c in ("start", "back", "cancel", "status", "help", "new")],
    *[f"edit:{state}" for state in EDITABLE], *PAYLOADS,
})
WORDS = ["/start", "/back", "/cancel", "/status", "/help", "/new", "/lang en", "/lang th", "ย้อนกลับ", "ยกเลิก",
         "สถานะ", "ใช่", "ไม่", "ไม่มี", "ยืนยัน"]
ACTION = st.one_of(
    st.tuples(st.just("text"), st.one_of(TYPED, st.sampled_from(WORDS), st.sampled_from(list(ANSWERS.values())))),
    st.tuples(st.just("button"), st.sampled_from(BUTTONS)),
    st.tuples(st.just("code"), st.sampled_from(["right", "wrong"])),
    st.tuples(st.just("kind"), st.sampled_from(_OTHER_KINDS)),
    st.tuples(st.just("phone"), st.integers(0, 9_999_999).map(lambda n: f"081{n:07d}")),
)
_officers = count(1)


async def act(officer: Officer, action: tuple[str, object]) -> list:
    what, value = action
    if what == "text":
        return await officer.say(str(value))
    if what == "button":
        return await officer.send(Kind.BUTTON, payload=str(value))
    if what == "kind":
        return await officer.send(value)  # type: ignore[arg-type] - no attachment, no contact: nothing to take
    if what == "phone":
        return await officer.say(str(value))
    # the one-time code: the one last sent to the number being verified, or a wrong one
    repo = officer.dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation(officer.channel, officer.user_id)
        challenge = await repo.otp.get(conv.otp_challenge_id) if conv and conv.otp_challenge_id else None
    code = None
    if value == "right" and challenge is not None:
        delivery, _ = await delivery_of(officer.dispatcher)
        await delivery.idle()
        code = officer.sms.last_code(challenge.phone)
    return await officer.say(code or "000000")


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(started=st.booleans(), actions=st.lists(ACTION, min_size=1, max_size=25))
async def test_any_sequence_of_inputs_leaves_a_valid_registration(dispatcher, sms, started, actions):
    officer = Officer(dispatcher, sms, user_id=f"property-{next(_officers)}", wait_for_delivery=False)
    if started:  # most sequences get past the notice, to reach the later steps
        await officer.say("/start")
        await officer.send(Kind.BUTTON, payload="consent:accept")
        await officer.send(Kind.BUTTON, payload="aff:obec")
    repo = dispatcher.repo
    for action in actions:
        replies = await act(officer, action)
        answer = "\n".join(r.text for r in replies)
        assert replies and not INTERNAL_ERROR & {r.text for r in replies}, (action, answer)
        assert not leaks(answer, str(action[1])), (action, answer)
        async with repo.transaction():
            conv = await repo.get_conversation(officer.channel, officer.user_id)
            reg = await repo.get_registration(conv.registration_id) if conv and conv.registration_id else None
        assert not problems(conv, reg), (action, problems(conv, reg))
