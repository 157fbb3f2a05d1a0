"""The LINE rich menu (`kiddiary-bot line-setup`): the four tiles under the chat (start, status,
send the signed letter, help), each a postback the core takes as that command.

Set up from the command line, not at each start: LINE keeps the menu, and making one is a few
requests an operator runs once (and again after changing its labels). Running it again replaces
the menu: the new one is made, given its image and made the default before the old ones of
ours are deleted, so officers never see the chat without a menu.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from linebot.v3.messaging import (
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    PostbackAction,
    RichMenuArea,
    RichMenuBounds,
    RichMenuRequest,
    RichMenuSize,
)
from linebot.v3.messaging.exceptions import ApiException

from bot.config import Config
from bot.line_api import api_client
from bot.line_messages import label
from templates import text
from templates.rich_menu import HEIGHT, ICONS, TILES, WIDTH, render_rich_menu

log = logging.getLogger(__name__)

MENU_NAME = "kiddiary-main"  # how line-setup recognises its own menus among the channel's
COMMANDS = {"start": "cmd:start", "status": "cmd:status", "letter": "cmd:letter", "help": "cmd:help"}


@dataclass(frozen=True)
class MenuSetup:
    menu_id: str
    replaced: tuple[str, ...]  # the ids of our older menus, deleted


def menu_image() -> bytes:
    """The menu's PNG, Thai labels large and English under them (blocking: call in a thread)."""
    return render_rich_menu([(text(f"menu_{icon}", "th"), text(f"menu_{icon}", "en")) for icon in ICONS])


def menu_request() -> RichMenuRequest:
    """The menu: one tap area a tile, the same rectangles the image draws, each a postback of its
    command that shows the Thai label in the chat as what the officer said."""
    areas = [
        RichMenuArea(
            bounds=RichMenuBounds(x=tile.x, y=tile.y, width=tile.width, height=tile.height),
            action=PostbackAction(label=label(text(f"menu_{icon}", "th")), data=COMMANDS[icon],
                                  display_text=text(f"menu_{icon}", "th")),
        )
        for tile, icon in zip(TILES, ICONS, strict=True)
    ]
    return RichMenuRequest(size=RichMenuSize(width=WIDTH, height=HEIGHT), selected=True, name=MENU_NAME,
                           chat_bar_text=text("menu_bar", "th"), areas=areas)


async def setup_rich_menu(config: Config) -> MenuSetup:
    """Make the menu, upload its image, make it every user's default, then delete our older
    menus. A menu left without its image (the upload failed) is deleted before the error goes up."""
    assert config.line_access_token
    image = await asyncio.to_thread(menu_image)
    clients = [await api_client(config.line_api_url, config.line_access_token),
               await api_client(config.line_data_api_url, config.line_access_token)]
    api, blob = AsyncMessagingApi(clients[0]), AsyncMessagingApiBlob(clients[1])
    try:
        listed = await api.get_rich_menu_list()
        older = tuple(m.rich_menu_id for m in listed.richmenus if m.name == MENU_NAME)
        menu_id = (await api.create_rich_menu(menu_request())).rich_menu_id
        try:
            await blob.set_rich_menu_image(menu_id, image, _headers={"Content-Type": "image/png"})
            await api.set_default_rich_menu(menu_id)
        except ApiException:
            await api.delete_rich_menu(menu_id)
            raise
        for old in older:
            try:
                await api.delete_rich_menu(old)
            except ApiException as e:  # gone already: nothing left to replace
                log.info("rich menu %s not deleted: HTTP %s", old, e.status)
        return MenuSetup(menu_id, older)
    finally:
        for client in clients:
            await client.close()
