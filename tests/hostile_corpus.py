"""Hostile inputs: what a careless phone, a copy-paste from a spreadsheet or someone probing the
bot can send. Used by tests/test_hostile.py through the core at every state of the
conversation and through each channel's webhook.

`TEXTS` are typed messages; `PAYLOADS` are button data as a platform hands them back (LINE
postback data, Telegram callback data), which a client can forge.
"""

from __future__ import annotations

# Lone surrogates: JSON can carry them ("\ud800" in a Telegram update or a LINE webhook decodes
# to one), so the core must survive them; they cannot be encoded as UTF-8.
SURROGATES = ["\ud800", "a\udfffb", "\udbff\udc00", "1234545678781\ud800", "/start\udc00"]

_CONTROL = [chr(c) for c in (0x00, 0x01, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x1B, 0x7F, 0x85, 0x9B)]

TEXTS: list[str] = [
    # overlong, and long without a break
    "a" * 1001, "ก" * 1001, "a" * 5001, "ก" * 20_000, " " * 6000, "\u200b" * 6000, "1" * 1001,
    "9" * 5000, "http://" + "a" * 990, "ก" * 999, "a" * 999, "โรงเรียน" * 20, "x" * 151, "x" * 65,
    "ก" * 51 + " " + "ข" * 51, "นาย" + "ก" * 60 + " ใจดี",
    # control characters, one by one and mixed in
    *[f"ab{c}cd" for c in _CONTROL],
    "\x00", "\x00" * 50, "\r\n\r\n", "\t\t", "\x1b[31mred\x1b[0m", "\x08" * 10, "1234545678781\x00",
    "081\x00234\x005678", "\u2028\u2029", "line one\nline two\nline three",
    # bidirectional overrides and marks
    "\u202eโรงเรียน", "\u202d1234545678781\u202c", "\u2066081-234-5678\u2069", "\u200fนายสมชาย ใจดี",
    "\u061c", "\u202e1875458754321", "abc\u202edcb", "\u2067\u2068\u2069", "\u200e\u200f" * 100,
    "\u202eยกเลิก", "/can\u202ecel",
    # zero-width and invisible characters
    "\u200b", "\u200c\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u3164", "\u115f",
    "1\u200b2\u200b3\u200b4\u200b5\u200b4\u200b5\u200b6\u200b7\u200b8\u200b7\u200b8\u200b1",
    "0\u200d8\u200d1\u200d2\u200d3\u200d4\u200d5\u200d6\u200d7\u200d8", "\ufeff/start", "/st\u200bart",
    "ไม่\u200bมี", "\u00a0\u00a0\u00a0", "\u3000", "\u2800" * 3,
    # lone surrogates
    *SURROGATES,
    # SQL-looking text
    "'; DROP TABLE registrations; --", "1 OR 1=1", '" OR ""="', "Robert'); DROP TABLE Students;--",
    "%' OR '1'='1", "1; SELECT * FROM conversations", "' UNION SELECT national_id FROM registrations --",
    "admin'--", "1054530001' OR '1'='1",
    # format-string-looking text
    "{0.__class__}", "{}", "{name}", "{ref}", "{0}", "%s%n", "%(x)s", "%d%d%d", "{{}}", "${jndi:ldap://x/a}",
    "{__import__('os')}", "{count}", "{.__globals__}", "{0!r:>99999999}", "{school}", "%", "{",
    "}", "{max}", "นาย{first} {last}",
    # HTML and Markdown
    "<b>ตัวหนา</b>", "<script>alert(1)</script>", "*bold*", "_italic_", "[link](http://evil.example)",
    "`code`", "```", "<a href='tg://user?id=1'>x</a>", "&lt;&gt;&amp;", "**", "\\", "~~x~~", "||spoiler||",
    "@everyone", "# หัวข้อ", "<img src=x onerror=alert(1)>", "]]>", "<!--", "นาย<b>สมชาย</b> ใจดี",
    # emoji, ZWJ sequences, flags, keycaps
    "👨‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽", "🇹🇭", "😀" * 100, "\ufe0f", "1️⃣2️⃣3️⃣", "นาย😀 ใจดี", "โรงเรียน🏫",
    "😀" * 1001, "a😀b",
    # combining-mark floods
    "a" + "\u0301" * 500, "Z̷̧̛̗̲̫͓̱̝̗̑̓̀̅̀̾̍͘a̷l̸g̶o̴", "ก" + "\u0e48" * 100, "\u0e31" * 50,
    "นาย" + "\u0e49" * 30 + " ใจดี", "\u0301",
    # Thai with misordered or doubled marks
    "่ก", "นายสมชาย ใจดี่่่", "นาย ส่่่มชาย ใจดี", "นายสมชาย\u0e48 ใจดี", "เเก", "นางสาว ำำำ ใจดี",
    "ก\u0e4c\u0e48", "\u0e33\u0e48", "โรงเรียน\u0e4e\u0e4e", "แพร่่", "ไม่มี่", "ะ",
    # numbers: huge, negative, float, other scripts
    "9" * 100, "1e308", "-1", "0", "1" * 13, "99999999999999999999", "0x1F", "∞", "NaN", "1,234,567",
    "๑๒๓๔๕๖๗๘๙๐๑๒๓", "１２３４５６７８９０１２３", "-0", "+66812345678" * 3, "3.14", "1_000", "-1054530001",
    "1054530001.5", "٠٨١٢٣٤٥٦٧٨", "⁰⁸¹²³⁴⁵⁶⁷⁸", "08l-234-5678", "+1 202 555 0100", "0000000000",
    # unknown commands, and known ones with odd arguments
    "/foo bar", "/start extra args", "/lang xx", "/lang", "/lang en extra", "/stats -1", "/import",
    "/help me", "/", "//", "/ ", "/\u200b", "/start@otherbot", "/status@kiddiary_test_bot", "/reject",
    "/approve ABC", "/find " + "x" * 600, "/find %", "/show -1", "/show 1.5", "/pending -5",
    "/pending 99999999999999999999", "/deadline yesterday", "/broadcast", "/broadcast_status -1",
    "/broadcast_cancel 1e9", "/reviewer add telegram:1", "/new now", "/back 2", "/cancel please",
    "/LANG EN", "/lang ${x}", "/unknown {0}", "/" + "a" * 4000,
    # JSON-looking text
    '{"a":1}', "[]", "null", '{"__proto__":{}}', '{"events":[]}', "true", '{"update_id":1}',
    # right-to-left scripts
    "مرحبا", "שלום עולם", "مرحبا 123", "السيد محمد علي",
    # spreadsheet formulas
    '=HYPERLINK("http://evil.example","click")', "=1+1", "+1+1", "-1+1", "@SUM(A1)", "=cmd|' /C calc'!A0",
    "\t=1+1", "=HYPERLINK(\"x\")", "-โรงเรียน", "+โรงเรียน",
    # answers of the wrong step, and words the bot knows, in odd forms
    "ยกเลิก", "ยกเลิก ยกเลิก", "  ย้อนกลับ  ", "ใช่", "ไม่", "CONFIRM", "ยืนยัน", "none", "NONE.", "-",
]

PAYLOADS: list[str] = [
    "", ":", "::::", "cmd:", "cmd:../../etc/passwd", "cmd:unknown", "aff:", "aff:xyz", "aff:obec:extra",
    "edit:", "edit:nonexistent", "edit:summary", "edit:start", "edit:letter", "edit:otp", "edit:consent",
    "review:", "review:approve", "review:approve:REF", "review:approve:::", "review:reject:x:y:z",
    "bcast:", "bcast:send:abc", "bcast:drop:-1", "bcast:send:99999999999999999999", "consent:", "consent:maybe",
    "otp:x", "otp:resend", "otp:change", "letter:again", "letter:edit", "keep", "none", "confirm", "share:phone",
    "camera", "x" * 301, "\x00", "\ud800", "cmd:new", "cmd:cancel", "cmd:back", "cmd:start", "cmd:status",
    "{0.__class__}", "'; DROP TABLE registrations; --", '{"a":1}', "cancel:yes", "cancel:no", "ยกเลิก",
]
